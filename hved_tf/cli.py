"""What the command-line programs share: `absl_main(run)` makes the `main` given to
`absl.app.run`, which refuses positional arguments and turns a ValueError (bad input, said in
the user's terms) into `error: ...` on stderr and exit status 2; `run_program` defines the
flags (only when run as a program, so that tests can import the modules), marks the required
ones and runs."""
from __future__ import annotations

import sys

from absl import app, flags


def absl_main(run):
    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        try:
            run()
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    return main


def run_program(define_flags, run, required):
    define_flags()
    flags.mark_flags_as_required(list(required))
    app.run(absl_main(run))
