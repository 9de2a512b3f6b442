"""`TrainConfig`: everything a training run is made of, its checks, and its run_config.json
(`to_dict` / `from_dict`, which also reads the flat layout of run folders written before the
configuration tree existed)."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import _positive_int, choice, known
from hved_tf.config.inference import InferenceOptions, validation_options
from hved_tf.config.sections import (_FLAT_LOSS, _FLAT_PIPELINE, DataConfig, IntensityConfig,
                                     ModelConfig, OptimConfig, PipelineConfig)
from hved_tf.config.vocabulary import OLD_PROTOCOL_NAMES, PRECISIONS, PROTOCOLS, STRATEGIES
from hved_tf.io.atomic import write_json
from hved_tf.losses import LossWeights
from hved_tf.modalities import subset_codes
from hved_tf.models import pooling_factor


@dataclasses.dataclass
class TrainConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    pipeline: PipelineConfig = dataclasses.field(default_factory=PipelineConfig)
    validation: InferenceOptions | None = None     # None: `validation_options(patch)`
    run_dir: str = "runs/demo"
    steps: int = 60_000
    validation_every: int = 1000
    validation_subsets: tuple = ("T1+T1c+T2+FLAIR", "T1c", "FLAIR", "T1+T2")
    test_subsets: tuple = ()           # the end-of-training test's; empty: validation's
    early_stopping_patience: int = 0   # validations without improvement; 0: never stop early
    keep_checkpoints: int = 3
    strategy: str = "default"
    precision: str = "float32"
    intra_op_threads: int = 0          # TensorFlow's threads within one op; 0: its own choice
    inter_op_threads: int = 0          # and ops run side by side; 0: its own choice
    log_every: int = 50                # steps between training-loss points and progress lines
    test_protocol: str = "paper"       # the end-of-training test: validation's settings and
                                       # best weights, or the release's ("original")
    test_samples: int = 1              # z samples averaged by that test (1: the posterior mean)
    prior_correction: bool = False     # validation and test undo the sampler's class prior shift

    @property
    def patch(self):
        return tuple(self.pipeline.window)

    def validate(self):
        for part in (self.data, self.model, self.optim, self.pipeline):
            part.validate()
        self._check_patch()
        if self.validation is None:
            self.validation = validation_options(self.patch)
        self.validation.validate()
        for name in ("steps", "validation_every", "keep_checkpoints", "log_every",
                     "test_samples"):
            _positive_int(name, getattr(self, name))
        self.validation_subsets = subset_codes(self.validation_subsets, "validation_subsets")
        self.test_subsets = subset_codes(self.test_subsets, "test_subsets")
        if self.early_stopping_patience < 0:
            raise ValueError("--early_stopping_patience must be >= 0.")
        choice("strategy", self.strategy, STRATEGIES)
        if self.strategy == "multi_worker" and self.early_stopping_patience:
            raise ValueError("--early_stopping_patience is decided on the chief alone and would "
                             "leave the other workers waiting: leave it at 0 with "
                             "--strategy=multi_worker.")
        choice("precision", self.precision, PRECISIONS)
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"--{name} must be an integer >= 0 (0: TensorFlow's own "
                                 f"choice), got {value!r}.")
        choice("test_protocol", self.test_protocol, PROTOCOLS)
        if not self.run_dir:
            raise ValueError("--run_dir is empty.")
        return self

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
        d = _nested(dict(d))
        data = known(DataConfig, d.pop("data"), "data.")
        data = DataConfig(**{**data, "demo_shape": tuple(data["demo_shape"]),
                             "pixdim": tuple(data.get("pixdim", ()))})
        model = ModelConfig(**known(ModelConfig, d.pop("model"), "model."))
        optim = known(OptimConfig, dict(d.pop("optim")), "optim.")
        loss = LossWeights(**known(LossWeights, optim.get("loss", {}), "optim.loss."))
        optim = OptimConfig(**{**optim, "loss": loss})
        pipeline = known(PipelineConfig, d.pop("pipeline"), "pipeline.")
        # Runs written before the release's sampling existed were trained without it.
        pipeline = {"volume_padding": 0, "spatial_augmentation": "window", **pipeline}
        intensity = known(IntensityConfig, pipeline.pop("intensity", {}), "pipeline.intensity.")
        intensity = IntensityConfig(**{k: tuple(v) for k, v in intensity.items()})
        pipeline = PipelineConfig(**{**pipeline, "window": tuple(pipeline["window"]),
                                     "flip_axes": tuple(pipeline["flip_axes"]),
                                     "intensity": intensity})
        validation = d.pop("validation", None)
        if validation is not None:
            validation = known(InferenceOptions, validation, "validation.")
            validation = InferenceOptions(**{
                **validation, "fallback_window": tuple(validation["fallback_window"]),
                "tta_axes": tuple(validation.get("tta_axes", ())),
                "class_weights": tuple(validation.get("class_weights", ())),
                "window": None if validation["window"] is None else tuple(validation["window"])})
        d["validation_subsets"] = tuple(d["validation_subsets"])
        d["test_subsets"] = tuple(d.get("test_subsets", ()))
        if "test_protocol" in d:
            d["test_protocol"] = OLD_PROTOCOL_NAMES.get(d["test_protocol"], d["test_protocol"])
        return cls(data=data, model=model, optim=optim, pipeline=pipeline,
                   validation=validation, **known(cls, d))

    def write(self, path):
        write_json(path, self.to_dict(), sort_keys=True)


def _nested(d):
    """A run_config.json of the flat layout (before the config tree) in the tree's layout."""
    if "pipeline" not in d:
        d["pipeline"] = {new: d.pop(old) for old, new in _FLAT_PIPELINE.items() if old in d}
    optim = dict(d.get("optim", {}))
    if "loss" not in optim:
        optim["loss"] = {new: optim.pop(old) for old, new in _FLAT_LOSS.items() if old in optim}
    d["optim"] = optim
    return d
