"""Typed configuration of a training run, with validation that speaks the user's language.

`TrainConfig` gathers `DataConfig`, `ModelConfig` and `OptimConfig` and the run's own settings;
`validate()` raises ValueError naming the flag and what is expected. `to_dict`/`from_dict` give
the resolved config written into the run folder (run_config.json). No TensorFlow here.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

from hved_tf.modalities import SUBSET_CODES, parse_subset, subset_code

MODEL_NAMES = ("u_hved", "u_hemis", "unet", "hemis")
KL_VARIANTS = ("original", "paper")
SAMPLERS = ("uniform", "balanced")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DEMO_ROOT = "demo"


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be a positive integer, got {value!r}.")


def _non_negative(name, value):
    if not isinstance(value, (int, float)) or value != value or value < 0:
        raise ValueError(f"--{name} must be a non-negative number, got {value!r}.")


@dataclasses.dataclass
class DataConfig:
    root: str = DEMO_ROOT              # a data folder, or "demo" for generated phantoms
    split: str = ""                    # a split file (release CSV or one id per line)
    naming: str = ""                   # the release's corresponding_naming.csv, with its splits
    fold: int = 0                      # without a split file: fold of a seeded 70/10/20 split
    folds: int = 3
    cache_dir: str = ""                # default: <run_dir>/../cache or ~/.cache/hved_tf
    hist_file: str = ""                # NiftyNet hist.txt; empty: train landmarks, keep in run dir
    demo_subjects: int = 24
    demo_shape: tuple = (64, 64, 64)
    on_bad_subject: str = "skip"

    def validate(self):
        if not self.root:
            raise ValueError("--data_root is empty: give a BraTS folder or 'demo'.")
        if self.root != DEMO_ROOT and not pathlib.Path(self.root).is_dir():
            raise ValueError(f"--data_root {self.root} is not a folder.")
        for name in ("split", "naming", "hist_file"):
            value = getattr(self, name)
            if value and not pathlib.Path(value).is_file():
                raise ValueError(f"--{name} file {value} does not exist.")
        _positive_int("folds", self.folds)
        if not 0 <= self.fold < self.folds:
            raise ValueError(f"--fold must be in 0..{self.folds - 1}, got {self.fold}.")
        _positive_int("demo_subjects", self.demo_subjects)
        if self.demo_subjects < 5:
            raise ValueError("--demo_subjects must be at least 5 (train, validation, test).")
        if len(self.demo_shape) != 3 or any(int(s) < 32 for s in self.demo_shape):
            raise ValueError(f"--demo_shape must be three sizes >= 32, got {self.demo_shape}.")
        if self.on_bad_subject not in ("skip", "fail"):
            raise ValueError("--on_bad_subject must be 'skip' or 'fail'.")


@dataclasses.dataclass
class ModelConfig:
    name: str = "u_hved"
    subset: str = ""                   # unet only: the modalities it is trained on
    base_filters: int = 8
    levels: int = 4
    kl_variant: str = "original"
    seed: int = 0

    def validate(self):
        if self.name not in MODEL_NAMES:
            raise ValueError(f"--model must be one of {', '.join(MODEL_NAMES)}, got {self.name!r}.")
        if self.name == "unet":
            if not self.subset:
                raise ValueError("--model=unet needs --subset, e.g. --subset=T1c+FLAIR.")
            try:
                self.subset = subset_code(parse_subset(self.subset))
            except ValueError as err:
                raise ValueError(f"--subset: {err}") from None
        elif self.subset:
            raise ValueError(f"--subset is for --model=unet only (got --model={self.name}).")
        _positive_int("base_filters", self.base_filters)
        _positive_int("levels", self.levels)
        if self.kl_variant not in KL_VARIANTS:
            raise ValueError(f"--kl_variant must be one of {', '.join(KL_VARIANTS)}, "
                             f"got {self.kl_variant!r}.")

    def build_options(self):
        options = {"seed": self.seed}
        if self.name != "hemis":
            options.update(base_filters=self.base_filters, levels=self.levels)
        if self.name == "unet":
            options["subset"] = self.subset
        if self.name == "u_hved":
            options["kl_variant"] = self.kl_variant
        return options


@dataclasses.dataclass
class OptimConfig:
    learning_rate: float = 1e-3
    lr_decay_factor: float = 0.25      # multiply the lr by this ...
    lr_decay_steps: int = 10_000       # ... every this many steps (the paper: /4 every 10k)
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    kl_weight: float = 0.1
    recon_weight: float = 0.1
    decay_weight: float = 1.0
    weight_decay: float = 1e-5

    def validate(self):
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}.")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"--lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}.")
        _positive_int("lr_decay_steps", self.lr_decay_steps)
        for name in ("dice_weight", "ce_weight", "kl_weight", "recon_weight", "decay_weight",
                     "weight_decay"):
            _non_negative(name, getattr(self, name))

    def loss_weights(self):
        return {"dice": self.dice_weight, "ce": self.ce_weight, "kl": self.kl_weight,
                "recon": self.recon_weight, "decay": self.decay_weight,
                "decay_scale": self.weight_decay}


@dataclasses.dataclass
class TrainConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run_dir: str = "runs/demo"
    patch: tuple = (112, 112, 112)
    batch_size: int = 1
    windows_per_volume: int = 32
    sampler: str = "uniform"
    flip_axes: tuple = (0, 1, 2)
    rotation_degrees: float = 0.0
    scaling: float = 0.1
    steps: int = 60_000
    validation_every: int = 1000
    validation_subsets: tuple = ("T1+T1c+T2+FLAIR", "T1c", "FLAIR", "T1+T2")
    early_stopping_patience: int = 0   # validations without improvement; 0: never stop early
    keep_checkpoints: int = 3
    strategy: str = "default"
    precision: str = "float32"

    def validate(self):
        self.data.validate()
        self.model.validate()
        self.optim.validate()
        if len(self.patch) != 3 or any(isinstance(p, bool) or not isinstance(p, int) or p < 8
                                       for p in self.patch):
            raise ValueError(f"--patch must be three integers >= 8, e.g. 112,112,112; "
                             f"got {self.patch}.")
        for name in ("batch_size", "windows_per_volume", "steps", "validation_every",
                     "keep_checkpoints"):
            _positive_int(name, getattr(self, name))
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}.")
        if any(a not in (0, 1, 2) for a in self.flip_axes):
            raise ValueError(f"--flip_axes must be among 0, 1, 2, got {self.flip_axes}.")
        if not 0 <= self.rotation_degrees <= 45:
            raise ValueError(f"--rotation must be in [0, 45] degrees, got {self.rotation_degrees}.")
        if not 0 <= self.scaling < 0.5:
            raise ValueError(f"--scaling must be in [0, 0.5), got {self.scaling}.")
        codes = []
        for code in self.validation_subsets:
            try:
                codes.append(subset_code(parse_subset(code)))
            except ValueError as err:
                raise ValueError(f"--validation_subsets: {err} Known codes: "
                                 f"{', '.join(SUBSET_CODES)}.") from None
        self.validation_subsets = tuple(codes)
        if self.early_stopping_patience < 0:
            raise ValueError("--early_stopping_patience must be >= 0.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}.")
        if self.strategy == "multi_worker" and self.early_stopping_patience:
            raise ValueError("--early_stopping_patience is decided on the chief alone and would "
                             "leave the other workers waiting: leave it at 0 with "
                             "--strategy=multi_worker.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}.")
        if not self.run_dir:
            raise ValueError("--run_dir is empty.")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        data = d.pop("data")
        data = DataConfig(**{**data, "demo_shape": tuple(data["demo_shape"])})
        model = ModelConfig(**d.pop("model"))
        optim = OptimConfig(**d.pop("optim"))
        for key in ("patch", "flip_axes", "validation_subsets"):
            d[key] = tuple(d[key])
        return cls(data=data, model=model, optim=optim, **d)

    def write(self, path):
        path = pathlib.Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
