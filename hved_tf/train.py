"""Train U-HVED or a baseline: `python -m hved_tf.train --flagfile configs/brats18.cfg`.

The flags are the settings of `hved_tf.config.TrainConfig` (docs/reference/flags.md); what a run does and
leaves in its folder: `hved_tf.training.app`. Exit status: 0 done, 2 bad input (or an output
that cannot be written), 3 the loss became NaN or infinite, 130 interrupted (Ctrl-C, SIGTERM:
run the same command to resume).
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import dataclasses

from hved_tf.cli import Program
from hved_tf.config import TrainConfig
from hved_tf.settings import section, setting
from hved_tf.training import app as training
from hved_tf.training.callbacks import NonFiniteLossError


RECIPE_NEEDED = ("no recipe given: name one, e.g. --flagfile configs/demo.cfg (the CPU demo) "
                 "or --flagfile configs/brats18.cfg --data_root=YOUR_BRATS_FOLDER.")


@dataclasses.dataclass(frozen=True)
class TrainCommand:
    """`hved-train`: the run's TrainConfig, and what to do with a finished run."""
    config: TrainConfig = section(TrainConfig)
    retest: bool = setting(False, "For a finished run: compute the test figures again "
                           "(nothing else is done).", group="output")

    def validate(self):
        return dataclasses.replace(self, config=self.config.validate())


def run(command):
    training.run(command.config, retest=command.retest)


PROGRAM = Program(TrainCommand, run, exit_codes=((NonFiniteLossError, 3),), name="train",
                  doc=__doc__, no_arguments=RECIPE_NEEDED)

if __name__ == "__main__":
    PROGRAM.main()
