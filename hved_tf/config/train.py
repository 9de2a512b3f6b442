"""`TrainConfig`: everything a training run is made of (each field a flag of `hved-train`,
hved_tf.settings), its checks, and its run_config.json (`to_dict` / `from_dict`, which reads
the layouts of older versions through hved_tf.config.stored)."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import non_negative, positive
from hved_tf.config.inference import InferenceOptions, parse_window, validation_options
from hved_tf.config.sections import DataConfig, ModelConfig, OptimConfig, PipelineConfig
from hved_tf.config.stored import load, migrated
from hved_tf.config.vocabulary import PRECISIONS, PROTOCOLS, STRATEGIES
from hved_tf.io.atomic import write_json
from hved_tf.modalities import subset_codes
from hved_tf.models import pooling_factor
from hved_tf.settings import check_fields, section, setting

_VALIDATION = "validation"
_OUTPUT = "output"
_RUNTIME = "distribution, precision and CPU threads"


def _validation_window(name, values):
    return parse_window(values, name, ("patch", "auto"))


@dataclasses.dataclass
class TrainConfig:
    data: DataConfig = section(DataConfig, "data")
    model: ModelConfig = section(ModelConfig, "model")
    optim: OptimConfig = section(OptimConfig, "optimisation")
    pipeline: PipelineConfig = section(PipelineConfig, "training windows and augmentation")
    steps: int = setting(60_000, "Optimiser steps.", check=positive, group="optimisation")
    # How validation and the end-of-training test segment (None: from validation_window).
    validation: InferenceOptions | None = dataclasses.field(
        default=None, metadata={"stored": InferenceOptions})
    validation_every: int = setting(1000, "Steps between validations (and backups).",
                                    check=positive, group=_VALIDATION)
    validation_subsets: tuple = setting(("T1+T1c+T2+FLAIR", "T1c", "FLAIR", "T1+T2"),
                                        "Modality subsets evaluated at each validation.",
                                        group=_VALIDATION)
    validation_window: tuple | str = setting(
        "patch", "Windows of validation and the paper-protocol test: patch (the training "
        "patch, the release's), auto (the whole cropped volume where it fits, else the patch) "
        "or X,Y,Z.", flag_default=("patch",), parse=_validation_window, group=_VALIDATION)
    test_subsets: tuple = setting((), "Subsets of the end-of-training test (all: the 15; "
                                  "empty: --validation_subsets).", items=str,
                                  group=_VALIDATION)
    early_stopping_patience: int = setting(0, "Stop after this many validations without "
                                           "improvement (0: never).",
                                           check=non_negative(" (0: never)"),
                                           group=_VALIDATION)
    test_protocol: str = setting("paper", "The end-of-training test: paper (validation's "
                                 "settings, best weights) or original (the release's "
                                 "evaluation, final weights).", choices=PROTOCOLS,
                                 group=_VALIDATION)
    test_samples: int = setting(1, "z draws whose softmax outputs the end-of-training test "
                                "averages (U-HVED; 1: the posterior mean, as validation; "
                                "evaluate's default: 10).", check=positive, group=_VALIDATION)
    prior_correction: bool = setting(False, "Measure how much more often the sampler's windows "
                                     "show each class than the training volumes do, save the "
                                     "correcting class weights (class_prior.json) and use them "
                                     "in validation, the test, evaluate, predict and exports "
                                     "(Bayes' rule for a shifted prior; "
                                     "hved_tf.data.class_prior).", group=_VALIDATION)
    run_dir: str = setting("runs/demo", "Folder of the run: config, checkpoints, logs.",
                           group=_OUTPUT)
    keep_checkpoints: int = setting(3, "Step checkpoints kept in <run_dir>/checkpoints.",
                                    check=positive, group=_OUTPUT)
    log_every: int = setting(50, "Steps between two training-loss points in TensorBoard (and "
                             "progress lines when not on a terminal).", check=positive,
                             group=_OUTPUT)
    strategy: str = setting("default", "Distribution strategy.", choices=STRATEGIES,
                            group=_RUNTIME)
    precision: str = setting("float32", "Keras precision policy.", choices=PRECISIONS,
                             group=_RUNTIME)
    intra_op_threads: int = setting(0, "CPU threads TensorFlow gives one op (0: its choice, the "
                                    "cores); configs/demo.cfg: 1, see there.",
                                    check=non_negative(" (0: TensorFlow's own choice)"),
                                    group=_RUNTIME)
    inter_op_threads: int = setting(0, "Ops TensorFlow runs side by side (0: its choice, the "
                                    "cores).",
                                    check=non_negative(" (0: TensorFlow's own choice)"),
                                    group=_RUNTIME)

    @property
    def patch(self):
        return tuple(self.pipeline.window)

    def validate(self):
        """A checked copy: each section checked, the subsets written as codes, `validation`
        made from `validation_window` when it is not given.

        Raises:
            ValueError: naming the flag and what it expects.
        """
        check_fields(self)
        checked = dataclasses.replace(
            self, data=self.data.validate(), model=self.model.validate(),
            optim=self.optim.validate(), pipeline=self.pipeline.validate())
        checked._check_patch()
        validation = self.validation
        if validation is None:
            validation = validation_options(checked.patch, self.validation_window)
        checked = dataclasses.replace(
            checked, validation=validation.validate(),
            validation_subsets=subset_codes(self.validation_subsets, "validation_subsets"),
            test_subsets=subset_codes(self.test_subsets, "test_subsets"))
        if self.strategy == "multi_worker" and self.early_stopping_patience:
            raise ValueError("--early_stopping_patience is decided on the chief alone and would "
                             "leave the other workers waiting: leave it at 0 with "
                             "--strategy=multi_worker.")
        if not self.run_dir:
            raise ValueError("--run_dir is empty.")
        return checked

    def _check_patch(self):
        """The patch against the network, before any data is prepared: validation and
        inference run windows of the patch, which must divide into the network's pooling."""
        factor = pooling_factor(self.model.name, **self.model.build_options())
        if any(p % factor for p in self.patch):
            fitted = ",".join(str(max(factor, -(-p // factor) * factor)) for p in self.patch)
            raise ValueError(
                f"--patch={','.join(map(str, self.patch))} does not fit --levels="
                f"{self.model.levels}: the network pools each axis by {factor}, so every patch "
                f"size must be a multiple of {factor} (e.g. --patch={fitted}).")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """A TrainConfig from a run_config.json of any version (not validated)."""
        return load(cls, migrated(d))

    def write(self, path):
        write_json(path, self.to_dict(), sort_keys=True)
