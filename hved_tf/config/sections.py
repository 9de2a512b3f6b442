"""The sections of a training configuration: data, model, optimisation, intensity
augmentation and the training windows, each a dataclass that checks itself."""
from __future__ import annotations

import dataclasses
import math
import pathlib

from hved_tf.config.checks import (between, non_negative, one_of, positive, sizes,
                                   voxel_sizes)
from hved_tf.config.vocabulary import (CACHE_DTYPES, DEMO_PHANTOMS, DEMO_ROOT, LR_SCHEDULES,
                                       MODEL_NAMES, ON_BAD_SUBJECT, SAMPLERS,
                                       SPATIAL_AUGMENTATIONS)
from hved_tf.losses import KL_VARIANTS, LossWeights
from hved_tf.modalities import parse_subset, subset_code
from hved_tf.models import model_options
from hved_tf.settings import check_fields, section, setting

@dataclasses.dataclass
class DataConfig:
    root: str = setting(DEMO_ROOT, "BraTS folder (layout detected), or 'demo' for generated "
                        "phantoms.", flag="data_root")
    split: str = setting("", "Split file: the release's CSV, or one id per line (train).")
    naming: str = setting("", "The release's corresponding_naming.csv, to map its ids.")
    fold: int = setting(0, "Without --split: fold of a seeded 70/10/20 split.")
    folds: int = setting(3, "Without --split: number of folds.", check=positive)
    cache_dir: str = setting("", "Preprocessed-subject cache (default: <run_dir>/../cache).")
    hist_file: str = setting("", "NiftyNet hist.txt landmarks; empty: train them (kept in the "
                             "run folder).")
    demo_subjects: int = setting(24, "Phantoms generated for --data_root=demo.",
                                 check=positive)
    demo_shape: tuple = setting((64, 64, 64), "Size X,Y,Z of the ellipsoid phantoms.",
                                check=sizes(32, "64,64,64"))
    demo_phantoms: str = setting("ellipsoid", "The demo's phantoms: anatomical (the MNI152 "
                                 "template with a grown tumour, from nilearn) or ellipsoid "
                                 "(fast, for tests).", choices=DEMO_PHANTOMS)
    demo_voxel_mm: float = setting(2.0, "Voxel size of the anatomical phantoms (mm).",
                                   check=between(1.0, 4.0, note=" mm"))
    on_bad_subject: str = setting("skip", "A subject that cannot be read: skip it (listed) or "
                                  "stop.", choices=ON_BAD_SUBJECT)
    landmark_subjects: int = setting(0, "Training subjects the histogram landmarks are trained "
                                     "on (0: all of them); unused with --hist_file.",
                                     check=non_negative(" (0: every training subject)"))
    cache_dtype: str = setting("float16", "The prepared images in the cache: float16 (half "
                               "the bytes) or float32.", choices=CACHE_DTYPES)
    prepare_workers: int = setting(1, "Processes preparing subjects into the cache (also: "
                                   "python -m hved_tf.prepare).", check=positive)
    pixdim: tuple = setting((), "Voxel size X,Y,Z (mm) the model is trained at: inputs of "
                            "another are resampled to it (cubic; labels nearest), here and at "
                            "inference. Empty: the demo phantoms' own, else 1,1,1 (the "
                            "release's).", items=float, check=voxel_sizes)

    def spacing(self):
        """The voxel size (mm) the model is trained at and every input is resampled to:
        --pixdim, else the demo phantoms' own, else 1 mm (the release's pixdim)."""
        if self.pixdim:
            return tuple(float(v) for v in self.pixdim)
        if self.root == DEMO_ROOT and self.demo_phantoms == "anatomical":
            return (float(self.demo_voxel_mm),) * 3
        return (1.0, 1.0, 1.0)

    def validate(self):
        check_fields(self)
        if not self.root:
            raise ValueError("--data_root is empty: give a BraTS folder or 'demo'.")
        if self.root != DEMO_ROOT and not pathlib.Path(self.root).is_dir():
            raise ValueError(f"--data_root {self.root} is not a folder.")
        for name in ("split", "naming", "hist_file"):
            value = getattr(self, name)
            if value and not pathlib.Path(value).is_file():
                raise ValueError(f"--{name} file {value} does not exist.")
        if not 0 <= self.fold < self.folds:
            raise ValueError(f"--fold must be in 0..{self.folds - 1}, got {self.fold}.")
        if self.demo_subjects < 5:
            raise ValueError("--demo_subjects must be at least 5 (train, validation, test).")
        return self


@dataclasses.dataclass
class ModelConfig:
    name: str = setting("u_hved", " | ".join(MODEL_NAMES) + ".", flag="model",
                        check=one_of(MODEL_NAMES))
    subset: str = setting("", "For --model=unet: its modalities, e.g. T1c+FLAIR.")
    base_filters: int = setting(8, "Base width F.", check=positive)
    levels: int = setting(4, "Scales of the U-Net.", check=positive)
    kl_variant: str = setting("original", " | ".join(KL_VARIANTS) + " (original: the released "
                              "code's).", check=one_of(KL_VARIANTS))
    seed: int = setting(0, "Seed of the data stream, subset draws and z samples.")

    def validate(self):
        """A checked copy (the subset written as its code, e.g. T1c+FLAIR)."""
        check_fields(self)
        options = model_options(self.name)
        if "subset" in options:
            if not self.subset:
                raise ValueError(f"--model={self.name} needs --subset, e.g. "
                                 "--subset=T1c+FLAIR.")
            try:
                return dataclasses.replace(self, subset=subset_code(parse_subset(self.subset)))
            except ValueError as err:
                raise ValueError(f"--subset: {err}") from None
        if self.subset:
            raise ValueError(f"--subset is for models with a fixed subset only (got "
                             f"--model={self.name}).")
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
    learning_rate: float = setting(1e-3, "Adam's initial learning rate.")
    lr_decay_factor: float = setting(0.25, "Multiply the lr by this every --lr_decay_steps.")
    lr_decay_steps: int = setting(10_000, "Steps between two lr decays.", check=positive)
    lr_schedule: str = setting("step", "step: the rate times --lr_decay_factor every "
                               "--lr_decay_steps (the U-HeMIS code's); constant: "
                               "--learning_rate throughout (the released U-HeMIS graph's); "
                               "poly: --learning_rate times (1 - step / --lr_decay_steps)^0.9, "
                               "zero from --lr_decay_steps on (nnU-Net's).",
                               choices=LR_SCHEDULES)
    ema_momentum: float = setting(0.0, "Exponential moving average of the weights: validation, "
                                  "the test and the final weights use the average (0: off, the "
                                  "release's recipe; 0.99-0.999 typical).",
                                  check=between(0, 1, high_open=True, note=" (0: no weight "
                                                "averaging; 0.99-0.999 typical)"))
    loss: LossWeights = section(LossWeights)

    def validate(self):
        check_fields(self)
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}.")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"--lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}.")
        self.loss.validate()
        return self


_INTENSITY = "intensity augmentation (off by default: the paper's recipe)"


@dataclasses.dataclass(frozen=True)
class IntensityConfig:
    """Intensity augmentation (hved_tf.data.intensity): (probability, ranges...) per operation;
    all off by default (the paper's recipe)."""
    bias_field: tuple = setting((0.0, 0.3), "Probability, strength: a smooth multiplicative "
                                "field exp(quadratic) per sequence.")
    gamma: tuple = setting((0.0, 0.3), "Probability, range of log gamma.")
    scale_shift: tuple = setting((0.0, 0.1, 0.1), "Probability, scale range, shift range "
                                 "(whitened units).", flag="intensity_scale")
    noise: tuple = setting((0.0, 0.1), "Probability, largest std of Gaussian noise.")
    blur: tuple = setting((0.0, 1.0), "Probability, largest Gaussian sigma (voxels).")

    @property
    def active(self):
        return any(op[0] > 0 for op in (self.bias_field, self.gamma, self.scale_shift,
                                        self.noise, self.blur))

    def validate(self):
        for field in dataclasses.fields(self):
            name, value = field.metadata.get("flag", field.name), tuple(getattr(self, field.name))
            size = len(field.default)
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
    window: tuple = setting((112, 112, 112), "Training window X,Y,Z.", flag="patch",
                            check=sizes(8))
    windows_per_volume: int = setting(32, "Windows drawn per visit of a subject.",
                                      check=positive)
    sampler: str = setting("uniform", "uniform (the release's) | balanced (a class chosen "
                           "uniformly, a window centred on one of its voxels) | foreground (a "
                           "share --foreground_fraction of the windows centred on the tumour, "
                           "the rest uniform).", choices=SAMPLERS)
    foreground_fraction: float = setting(0.33, "With --sampler=foreground: the share of "
                                         "windows centred on a tumour voxel.",
                                         check=between(0, 1))
    batch_size: int = setting(1, "Windows per step (global, over all replicas).",
                              check=positive)
    flip_axes: tuple = setting((0, 1, 2), "Axes of random flips (empty: none).", items=int)
    rotation_degrees: float = setting(0.0, "Random rotation within ± this many degrees.",
                                      flag="rotation", check=between(0, 45, note=" degrees"))
    scaling: float = setting(0.1, "Random zoom within 1 ± this (per axis with "
                             "--spatial_augmentation=release).",
                             check=between(0, 0.5, high_open=True))
    seed: int = 0
    cycle_length: int = 4
    prefetch: int = 2
    volume_padding: int = setting(10, "Voxels padded around each volume before windows are "
                                  "drawn, as the release did (0: none); release: each padded "
                                  "line its line's minimum (images and labels), window: the "
                                  "channel minimum and label 0.", check=non_negative())
    spatial_augmentation: str = setting("release", "release: per visit of a subject, a zoom "
                                        "per axis (cubic) and flips of the whole padded "
                                        "volume; window: per window, one isotropic zoom "
                                        "(trilinear), rotation and flips.",
                                        choices=SPATIAL_AUGMENTATIONS)
    release_label_filtering: bool = setting(False, "With --spatial_augmentation=release: the "
                                            "release's quirk of smoothing the label volume "
                                            "before an antialiased zoom, then truncating it to "
                                            "integers (configs/brats18.cfg; "
                                            "docs/explanation/faithfulness.md).")
    intensity: IntensityConfig = section(IntensityConfig, _INTENSITY)

    def validate(self):
        check_fields(self)
        self.intensity.validate()
        if self.spatial_augmentation == "release" and self.rotation_degrees:
            raise ValueError("--rotation is for --spatial_augmentation=window (the release "
                             "zoomed and flipped its volumes, it did not rotate them).")
        if self.release_label_filtering and self.spatial_augmentation != "release":
            raise ValueError("--release_label_filtering reproduces a quirk of the release's "
                             "volume zoom: it needs --spatial_augmentation=release.")
        for name in ("cycle_length", "prefetch"):
            positive(name, getattr(self, name))
        if any(a not in (0, 1, 2) for a in self.flip_axes):
            raise ValueError(f"--flip_axes must be among 0, 1, 2, got {self.flip_axes}.")
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
