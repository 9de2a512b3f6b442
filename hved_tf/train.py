"""Train U-HVED or a baseline: `python -m hved_tf.train --flagfile configs/brats18.cfg`.

The flags and their table: `hved_tf.training.flags` and docs/reference/flags.md; what a run does and
leaves in its folder: `hved_tf.training.app`. Exit status: 0 done, 2 bad input (or an output
that cannot be written), 3 the loss became NaN or infinite, 130 interrupted (Ctrl-C, SIGTERM:
run the same command to resume).
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
from absl import flags

from hved_tf.cli import Program
from hved_tf.training import app as training
from hved_tf.training.callbacks import NonFiniteLossError
from hved_tf.training.flags import config_from_flags, define_flags


RECIPE_NEEDED = ("no recipe given: name one, e.g. --flagfile configs/demo.cfg (the CPU demo) "
                 "or --flagfile configs/brats18.cfg --data_root=YOUR_BRATS_FOLDER.")


def run():
    training.run(config_from_flags(), retest=flags.FLAGS.retest)


PROGRAM = Program(define_flags, run, exit_codes=((NonFiniteLossError, 3),), name="train",
                  doc=__doc__, no_arguments=RECIPE_NEEDED)

if __name__ == "__main__":
    PROGRAM.main()
