"""Train U-HVED or a baseline: `python -m hved_tf.train --flagfile configs/brats18.cfg`.

The flags and their table: `hved_tf.training.flags` and the README; what a run does and
leaves in its folder: `hved_tf.training.app`. Exit status: 0 done, 2 bad input, 3 the loss
became NaN or infinite.
"""
from __future__ import annotations

import logging
import sys

from absl import app

from hved_tf.training import app as training
from hved_tf.training.callbacks import NonFiniteLossError
from hved_tf.training.flags import config_from_flags, define_flags


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        training.run(config_from_flags())
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
