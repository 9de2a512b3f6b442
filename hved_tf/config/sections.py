"""The sections of a training configuration: data, model, optimisation, intensity
augmentation and the training windows, each a dataclass that checks itself."""
from __future__ import annotations

import dataclasses
import math
import pathlib

from hved_tf.config.checks import _positive_int, _sizes, _spacing, choice
from hved_tf.config.vocabulary import (CACHE_DTYPES, DEMO_PHANTOMS, DEMO_ROOT, LR_SCHEDULES,
                                       MODEL_NAMES, ON_BAD_SUBJECT, SAMPLERS,
                                       SPATIAL_AUGMENTATIONS)
from hved_tf.losses import KL_VARIANTS, LossWeights
from hved_tf.modalities import parse_subset, subset_code
from hved_tf.models import model_options

# Flags of the flat run_config.json layout (before the configuration tree) and their fields.
_FLAT_PIPELINE = {"patch": "window", "batch_size": "batch_size",
                  "windows_per_volume": "windows_per_volume", "sampler": "sampler",
                  "flip_axes": "flip_axes", "rotation_degrees": "rotation_degrees",
                  "scaling": "scaling"}
_FLAT_LOSS = {"dice_weight": "dice", "ce_weight": "ce", "kl_weight": "kl",
              "recon_weight": "recon", "decay_weight": "decay", "weight_decay": "decay_scale"}


@dataclasses.dataclass
class DataConfig:
    root: str = DEMO_ROOT              # a data folder, or "demo" for generated phantoms
    split: str = ""                    # a split file (release CSV or one id per line)
    naming: str = ""                   # the release's corresponding_naming.csv, with its splits
    fold: int = 0                      # without a split file: fold of a seeded 70/10/20 split
    folds: int = 3
    cache_dir: str = ""                # default: <run_dir>/../cache
    hist_file: str = ""                # NiftyNet hist.txt; empty: train landmarks, keep in run dir
    demo_subjects: int = 24
    demo_shape: tuple = (64, 64, 64)  # ellipsoid phantoms only
    demo_phantoms: str = "ellipsoid"   # | "anatomical" (hved_tf.data.anatomy; configs/demo.cfg)
    demo_voxel_mm: float = 2.0         # anatomical phantoms only
    on_bad_subject: str = "skip"
    landmark_subjects: int = 0         # training subjects the landmarks are trained on; 0: all
    cache_dtype: str = "float16"       # the prepared images on disk (hved_tf.data.cache)
    prepare_workers: int = 1           # processes preparing subjects into the cache
    pixdim: tuple = ()                 # voxel size (mm) the model works at; (): the data's own

    def spacing(self):
        """The voxel size (mm) the model is trained at and every input is resampled to:
        --pixdim, else the demo phantoms' own, else 1 mm (the release's pixdim)."""
        if self.pixdim:
            return tuple(float(v) for v in self.pixdim)
        if self.root == DEMO_ROOT and self.demo_phantoms == "anatomical":
            return (float(self.demo_voxel_mm),) * 3
        return (1.0, 1.0, 1.0)

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
        _sizes("demo_shape", tuple(self.demo_shape), 32, "64,64,64")
        choice("demo_phantoms", self.demo_phantoms, DEMO_PHANTOMS)
        if not isinstance(self.demo_voxel_mm, (int, float)) or not \
                1.0 <= self.demo_voxel_mm <= 4.0:
            raise ValueError(f"--demo_voxel_mm must be in [1, 4] mm, got {self.demo_voxel_mm!r}.")
        choice("on_bad_subject", self.on_bad_subject, ON_BAD_SUBJECT)
        if isinstance(self.landmark_subjects, bool) or not isinstance(
                self.landmark_subjects, int) or self.landmark_subjects < 0:
            raise ValueError(f"--landmark_subjects must be an integer >= 0 (0: every training "
                             f"subject), got {self.landmark_subjects!r}.")
        choice("cache_dtype", self.cache_dtype, CACHE_DTYPES)
        _positive_int("prepare_workers", self.prepare_workers)
        _spacing("pixdim", self.pixdim)
        return self


@dataclasses.dataclass
class ModelConfig:
    name: str = "u_hved"               # a name of the registry (hved_tf.models.MODELS)
    subset: str = ""                   # models with a fixed subset (unet): their modalities
    base_filters: int = 8
    levels: int = 4
    kl_variant: str = "original"
    seed: int = 0

    def validate(self):
        choice("model", self.name, MODEL_NAMES)
        options = model_options(self.name)
        if "subset" in options:
            if not self.subset:
                raise ValueError(f"--model={self.name} needs --subset, e.g. "
                                 "--subset=T1c+FLAIR.")
            try:
                self.subset = subset_code(parse_subset(self.subset))
            except ValueError as err:
                raise ValueError(f"--subset: {err}") from None
        elif self.subset:
            raise ValueError(f"--subset is for models with a fixed subset only (got "
                             f"--model={self.name}).")
        _positive_int("base_filters", self.base_filters)
        _positive_int("levels", self.levels)
        choice("kl_variant", self.kl_variant, KL_VARIANTS)
        return self

    def build_options(self):
        """The options of `build_model(self.name, ...)` that this model takes."""
        accepted = model_options(self.name)
        candidates = {"seed": self.seed, "base_filters": self.base_filters,
                      "levels": self.levels, "kl_variant": self.kl_variant,
                      "subset": self.subset}
        return {k: v for k, v in candidates.items() if k in accepted and v != ""}


@dataclasses.dataclass
class OptimConfig:
    learning_rate: float = 1e-3
    lr_decay_factor: float = 0.25      # multiply the lr by this ...
    lr_decay_steps: int = 10_000       # ... every this many steps (the paper: /4 every 10k)
    lr_schedule: str = "step"          # "constant": the released U-HeMIS graph's fixed rate
    ema_momentum: float = 0.0          # weight averaging (validation, test, final weights); 0: off
    loss: LossWeights = dataclasses.field(default_factory=LossWeights)

    def validate(self):
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}.")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"--lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}.")
        _positive_int("lr_decay_steps", self.lr_decay_steps)
        choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not (isinstance(self.ema_momentum, (int, float)) and 0 <= self.ema_momentum < 1):
            raise ValueError(f"--ema_momentum must be in [0, 1) (0: no weight averaging; "
                             f"0.99-0.999 typical), got {self.ema_momentum!r}.")
        for flag, field in _FLAT_LOSS.items():
            value = getattr(self.loss, field)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise ValueError(f"--{flag} must be a non-negative number, got {value!r}.")
        return self


@dataclasses.dataclass(frozen=True)
class IntensityConfig:
    """Intensity augmentation (hved_tf.data.intensity): (probability, ranges...) per operation;
    all off by default (the paper's recipe)."""
    bias_field: tuple = (0.0, 0.3)             # probability, strength
    gamma: tuple = (0.0, 0.3)                  # probability, range of log gamma
    scale_shift: tuple = (0.0, 0.1, 0.1)       # probability, scale range, shift range
    noise: tuple = (0.0, 0.1)                  # probability, largest std
    blur: tuple = (0.0, 1.0)                   # probability, largest sigma (voxels)

    @property
    def active(self):
        return any(op[0] > 0 for op in (self.bias_field, self.gamma, self.scale_shift,
                                        self.noise, self.blur))

    def validate(self):
        for name, value, size in (("bias_field", self.bias_field, 2), ("gamma", self.gamma, 2),
                                  ("intensity_scale", self.scale_shift, 3),
                                  ("noise", self.noise, 2), ("blur", self.blur, 2)):
            value = tuple(value)
            if len(value) != size or not all(isinstance(v, (int, float)) for v in value):
                raise ValueError(f"--{name} must be {size} numbers (probability first), got "
                                 f"{value}.")
            if not 0.0 <= value[0] <= 1.0:
                raise ValueError(f"--{name}: the probability must be in [0, 1], got {value[0]}.")
            if any(v < 0 for v in value[1:]):
                raise ValueError(f"--{name}: ranges must be >= 0, got {value[1:]}.")
        if self.gamma[1] > 1.0 or self.scale_shift[1] >= 1.0 or self.bias_field[1] > 2.0 \
                or self.blur[1] > 5.0:
            raise ValueError("Intensity augmentation out of range: --gamma range <= 1 (log), "
                             "--intensity_scale scale < 1, --bias_field strength <= 2, --blur "
                             "sigma <= 5 voxels.")
        return self



@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Training windows. `seed` is set by the training app from --seed and the worker."""
    window: tuple = (112, 112, 112)
    windows_per_volume: int = 32
    sampler: str = "uniform"
    foreground_fraction: float = 0.33  # sampler "foreground": windows centred on the tumour
    batch_size: int = 1
    flip_axes: tuple = (0, 1, 2)
    rotation_degrees: float = 0.0
    scaling: float = 0.1
    seed: int = 0
    cycle_length: int = 4
    prefetch: int = 2
    volume_padding: int = 10           # voxels around each volume before windows are drawn
    spatial_augmentation: str = "release"
    release_label_filtering: bool = False  # the release's smoothed, truncated labels
    intensity: IntensityConfig = IntensityConfig()

    def validate(self):
        _sizes("patch", tuple(self.window), 8)
        self.intensity.validate()
        if isinstance(self.volume_padding, bool) or not isinstance(self.volume_padding, int) \
                or self.volume_padding < 0:
            raise ValueError(f"--volume_padding must be an integer >= 0, got "
                             f"{self.volume_padding!r}.")
        choice("spatial_augmentation", self.spatial_augmentation, SPATIAL_AUGMENTATIONS)
        if self.spatial_augmentation == "release" and self.rotation_degrees:
            raise ValueError("--rotation is for --spatial_augmentation=window (the release "
                             "zoomed and flipped its volumes, it did not rotate them).")
        if self.release_label_filtering and self.spatial_augmentation != "release":
            raise ValueError("--release_label_filtering reproduces a quirk of the release's "
                             "volume zoom: it needs --spatial_augmentation=release.")
        for name in ("windows_per_volume", "batch_size", "cycle_length", "prefetch"):
            _positive_int(name, getattr(self, name))
        choice("sampler", self.sampler, SAMPLERS)
        if not 0 <= self.foreground_fraction <= 1:
            raise ValueError(f"--foreground_fraction must be in [0, 1], got "
                             f"{self.foreground_fraction}.")
        if any(a not in (0, 1, 2) for a in self.flip_axes):
            raise ValueError(f"--flip_axes must be among 0, 1, 2, got {self.flip_axes}.")
        if not 0 <= self.rotation_degrees <= 45:
            raise ValueError(f"--rotation must be in [0, 45] degrees, got {self.rotation_degrees}.")
        if not 0 <= self.scaling < 0.5:
            raise ValueError(f"--scaling must be in [0, 0.5), got {self.scaling}.")
        return self

    @property
    def margin(self):
        """Voxels added on each side of a window so that rotation/zoom never look outside
        (per-window augmentation only: the release's transforms the whole volume)."""
        if self.spatial_augmentation == "release" or not (self.rotation_degrees or self.scaling):
            return (0, 0, 0)
        theta = math.radians(self.rotation_degrees)
        grow = (1.0 + self.scaling) * (math.cos(theta) + 2 * math.sin(theta)) - 1.0
        return tuple(int(math.ceil(w * max(grow, 0.0) / 2)) + 1 for w in self.window)
