"""What the command-line programs share.

`Program(config, run, exit_codes)` is one command line: `.main()` defines its flags from the
config dataclass (hved_tf.config.flagdefs; only when run as a program, so that tests can import
the modules), refuses a run without its required ones and runs `run(config)` under absl with
the validated config: a positional argument is refused, and a ValueError (bad input, said in
the user's terms) becomes `error: ...` on stderr and exit status 2. `.call(argv)` runs
the same program inside the calling process and returns its exit status (the fault-matrix tests
run dozens of bad inputs this way without starting TensorFlow each time).

`--help` (or `-h`) prints the program's own flags grouped by topic (the settings' groups),
with defaults and one line each, and exits 0; `--helpfull` still lists every
flag, absl's included. The program's own log lines go to stdout (`warning: ...` lines to
stderr), without absl's prefixes.
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import sys
from typing import Callable

from absl import app, flags
from absl import logging as absl_logging

from hved_tf import quiet
from hved_tf.config import flagdefs
from hved_tf.errors import Interrupted
from hved_tf.flaggroups import GROUPS, help_text

FLAGS = flags.FLAGS


INTERRUPTED = 130         # the shell's code for a command ended by Ctrl-C


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def absl_main(run, exit_codes=()):
    """The `main` of absl.app.run: `run()` with errors said in one line. ValueError (bad input,
    unwritable output) exits 2, the exception types of `exit_codes` ((type, code) pairs) their
    code, Ctrl-C and SIGTERM 130, each printed as `error: ...` (or `interrupted: ...`) on
    stderr, never as a traceback."""
    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            run()
        except tuple(kind for kind, _ in exit_codes) as err:
            print(f"error: {err}", file=sys.stderr)
            return next(code for kind, code in exit_codes if isinstance(err, kind))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except Interrupted as err:
            print(f"interrupted: {err}", file=sys.stderr)
            return INTERRUPTED
        except KeyboardInterrupt:
            print("interrupted: nothing partial was left (outputs are written whole or not at "
                  "all).", file=sys.stderr)
            return INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0
    return main


BAD_INPUT = 2             # the programs' status for bad input, flags included
HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


class _UsageError(Exception):
    """Flags that cannot be parsed, a missing required flag, or a positional argument."""


FLAG_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _flagfile_of(argv, name):
    """The --flagfile among `argv` that sets --`name` (or --no`name`), else None."""
    files = [a.split("=", 1)[1] for a in argv if a.startswith("--flagfile=")]
    files += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--flagfile"]
    for path in files:
        try:
            lines = [line.strip() for line in open(path, encoding="utf-8")]
        except OSError:
            continue
        if any(line.split("=", 1)[0] in (f"--{name}", f"--no{name}") for line in lines):
            return path
    return None


def _where_set(message, argv):
    """A settings error ("--name ...") with the flagfile that set the flag in front, when a
    flagfile did (and the command line did not)."""
    if not message.startswith("--"):
        return message
    name = message[2:].split("=", 1)[0].split()[0].rstrip(":.,")
    if any(str(a).split("=", 1)[0] in (f"--{name}", f"--no{name}") for a in argv):
        return message
    path = _flagfile_of([str(a) for a in argv], name)
    return f"{path}: {message}" if path else message


def _flag_error(err, argv):
    """absl's parse error in one line, with the expected type of a bad value and the flagfile
    that holds the flag."""
    text = str(err)
    name = getattr(err, "flagname", None)
    if name is None and text.startswith("flag --"):
        name = text[len("flag --"):].split("=", 1)[0].split(":", 1)[0]
    if not name:
        return text
    if name in FLAGS and isinstance(err, flags.IllegalFlagValueError):
        kind = FLAGS[name].flag_type()
        text += f" (expected {FLAG_TYPES.get(kind, kind)})"
    path = _flagfile_of(argv, name)
    return f"{path}: {text}" if path else text


def _parse(argv, required):
    """Parses `argv` (with the program's name first) into FLAGS; raises _UsageError."""
    try:
        rest = FLAGS(list(argv))
    except flags.Error as err:
        raise _UsageError(_flag_error(err, list(argv))) from None
    missing = [name for name in required if FLAGS[name].value is None]
    if missing:
        raise _UsageError("missing " + ", ".join(f"--{name}" for name in missing)
                          + " (--help lists the flags).")
    if len(rest) > 1:
        raise _UsageError(f"unexpected argument {rest[1]!r}: flags are written --name=value "
                          "(--help lists them).")
    return rest


def configure_logging():
    """hved_tf's log lines: information on stdout as is, warnings on stderr as `warning: `."""
    logger = logging.getLogger("hved_tf")
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    out.setFormatter(logging.Formatter("%(message)s"))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("warning: %(message)s"))
    logger.handlers = [out, err]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not quiet.VERBOSE:
        # TensorFlow's Python notices (an export's renamed input names, its saver's timings)
        # say nothing a user can act on; absl's start of the program resets their level.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.WARNING)    # TensorFlow logs through absl too


@dataclasses.dataclass(frozen=True)
class Program:
    """One command line: the config dataclass its flags are made from (`config`), what it runs
    (`run(config)`, given the validated config), its own exit codes. `no_arguments`: what to
    say when it is run with none (its help is printed first)."""
    config: type
    run: Callable
    exit_codes: tuple = ()
    name: str = ""
    doc: str = ""
    no_arguments: str = ""

    @property
    def required(self):
        """The flags the program refuses to run without."""
        return flagdefs.required(self.config)

    def define_flags(self):
        """Defines the program's flags (one per setting of its config)."""
        flagdefs.define(self.config)

    def _define(self):
        GROUPS.clear()
        self.define_flags()

    def _run(self, argv=()):
        try:
            config = flagdefs.build(self.config).validate()
        except ValueError as err:
            raise ValueError(_where_set(str(err), argv)) from None
        self.run(config)

    def _usage(self, argv):
        """(exit status, or None to go on): --help, no arguments, flags that do not parse."""
        if any(arg in HELP_FLAGS for arg in argv[1:]):
            print(help_text(self.name, self.doc, GROUPS))
            return 0
        if len(argv) == 1 and (self.required or self.no_arguments):
            print(help_text(self.name, self.doc, GROUPS))
            missing = ", ".join(f"--{n}" for n in self.required)
            print(f"error: {self.no_arguments or 'missing ' + missing}", file=sys.stderr)
            return BAD_INPUT
        try:
            _parse(argv, self.required)
        except _UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return BAD_INPUT
        return None

    def main(self):
        """Runs as a program (`python -m ...` or an installed command): absl parses sys.argv
        and the process exits with the status."""
        self._define()
        app.define_help_flags()                      # --helpfull, as absl's own programs
        status = self._usage(sys.argv)
        if status is not None:
            sys.exit(status)

        def run():
            configure_logging()
            self._run(sys.argv)
        app.run(absl_main(run, self.exit_codes), flags_parser=lambda argv: [argv[0]])

    def call(self, argv):
        """Runs with the arguments `argv` (without the program name) in this process; returns
        the exit status. The program's flags are defined for the call only."""
        before = set(FLAGS)
        self._define()
        try:
            status = self._usage(["hved_tf", *argv])
            if status is not None:
                return status
            return absl_main(lambda: self._run(argv), self.exit_codes)(["hved_tf"])
        finally:
            for name in set(FLAGS) - before:
                delattr(FLAGS, name)
