"""Sliding-window inference settings (`InferenceOptions`) and validation's (`validation_options`)."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import (three_sizes, between, checked_class_weights, choice,
                                   non_negative, positive)
from hved_tf.config.vocabulary import INFERENCE_PRECISIONS
from hved_tf.modalities import MODALITIES
from hved_tf.settings import check_fields, setting

BLENDS = ("constant", "gaussian", "overwrite")   # overwrite: later windows win (the release)
WHOLE_VOLUME_MAX_VOXELS = 200 * 200 * 160   # u_hved with 10 samples: about 5 GB, 20 s on 2 cores


_WINDOWS = "inference (sliding windows)"
_POST = "post-processing (off by default: the paper's protocol)"
_GRIDS = "voxel size and grids (docs/how-to/your-own-scans.md)"


def _auto_window(name, values):
    """A window flag's value: None for "auto", else three integers."""
    window = parse_window(values, name)
    return None if window == "auto" else window


def _axes(name, axes):
    axes = tuple(axes)
    if any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"--{name} must be distinct axes among 0, 1, 2, got {axes}.")


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """Sliding-window settings (hved_tf.inference), all of them the user's choice. `window=None`
    ("auto"): the whole volume in one window when it holds at most `max_voxels` voxels (once
    padded to the network's multiple), else windows of the model's training patch
    (`ModelFacts.patch`)."""
    window: tuple | None = setting(None, "Sliding window X,Y,Z, or auto: the whole cropped "
                                   "volume when it fits 200x200x160 voxels, else the training "
                                   "patch.", flag_default=("auto",), parse=_auto_window,
                                   group=_WINDOWS)
    overlap: float = setting(0.5, "Overlap of neighbouring windows, in [0, 1).",
                             check=between(0, 1, high_open=True), group=_WINDOWS)
    border: int = setting(0, "Voxels cut from each side of a window (the original: 10).",
                          check=non_negative(), group=_WINDOWS)
    blend: str = setting("gaussian", "Weights where windows overlap.", choices=BLENDS,
                         group=_WINDOWS)
    num_samples: int = setting(10, "z samples averaged for the segmentation (U-HVED; an "
                               "export's default).", flag="samples", check=positive,
                               group=_WINDOWS)
    batch_size: int = setting(1, "Windows per forward pass.", check=positive, group=_WINDOWS)
    tta: bool = setting(False, "Test-time augmentation: average over the mirror flips of "
                        "--tta_axes (8 flips for all three axes) composed with the z samples; "
                        "the variance and uncertainty include the spread.", group=_WINDOWS)
    tta_axes: tuple = setting((0, 1, 2), "Axes mirrored by --tta.", check=_axes,
                              group=_WINDOWS)
    precision: str = setting("float32", "bfloat16: convolutions in bfloat16 where the CPU has "
                             "avx512_bf16 (or a GPU), else float32 with a warning; "
                             "docs/benchmarks/performance.md.", flag="inference_precision",
                             choices=INFERENCE_PRECISIONS, group=_WINDOWS)
    # The prior correction (hved_tf.data.class_prior): whether to use the model's when it has
    # one (its weights are the model's: ModelFacts).
    prior_correction: bool = setting(True, "Use a run's prior correction when it has one "
                                     "(trained with --prior_correction: its class_prior.json); "
                                     "--noprior_correction: the network's probabilities as "
                                     "they are.", group=_WINDOWS)
    et_threshold: int = setting(0, "ETpp (RFNet's rule with 500): fewer enhancing voxels than "
                                "this are relabelled necrotic core (0: off).",
                                check=non_negative(" (0: off)"), group=_POST)
    min_component: int = setting(0, "Remove whole-tumour components smaller than this many "
                                 "voxels (0: off).", check=non_negative(" (0: off)"),
                                 group=_POST)
    largest_component: bool = setting(False, "Keep the largest whole-tumour component only.",
                                      group=_POST)
    max_voxels: int = WHOLE_VOLUME_MAX_VOXELS
    single_draw: bool = False          # with num_samples 1: one random z draw, not the mean

    @property
    def postprocessing(self):
        return bool(self.et_threshold or self.min_component or self.largest_component)

    @property
    def mirror_axes(self):
        """The axes test-time augmentation mirrors: --tta_axes with --tta, else none."""
        return tuple(self.tta_axes) if self.tta else ()

    def validate(self):
        check_fields(self)
        if self.window is not None:
            three_sizes("window", tuple(self.window), 8, "'auto' or 128,128,128")
        positive("max_voxels", self.max_voxels)
        return self


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What a trained model brings to inference, read from its run (never a flag): its
    training patch (the windows of "auto" mode when the whole volume does not fit) and the
    class weights of its prior correction (hved_tf.data.class_prior; () none)."""
    patch: tuple = (112, 112, 112)
    class_weights: tuple = ()

    def validate(self):
        three_sizes("patch", tuple(self.patch), 8)
        if self.class_weights:
            checked_class_weights("class weights of the prior correction", self.class_weights)
        return self

    def weights_for(self, options):
        """The class weights in force under `options` (none with --noprior_correction)."""
        return tuple(self.class_weights) if options.prior_correction else ()


def _reference(name, value):
    if value:
        choice(name, value, MODALITIES)


def _modality(value):
    """A modality's name as written in hved_tf (t1c -> T1c), else as given (refused later)."""
    return next((m for m in MODALITIES if m.lower() == value.lower()), value)


@dataclasses.dataclass(frozen=True)
class GridOptions:
    """How a subject's files reach the model's grid (predict, evaluate): resampled to the
    model's voxel size (`hved_tf.inference.spacing`; `keep_input_spacing`: not) and, for
    sequences on different grids, onto the grid of `reference` (a modality; "": the finest:
    `hved_tf.preprocessing.grids`)."""
    keep_input_spacing: bool = setting(False, "Segment inputs on their own grid even when "
                                       "their voxel size differs from the model's (warned); "
                                       "default: resample them to the model's and bring the "
                                       "outputs back.", group=_GRIDS)
    reference: str = setting("", "Sequences on different grids of one exam are resampled onto "
                             "this one's grid (T1, T1c, T2 or FLAIR); default: the one with the "
                             "finest voxels.", flag="reference_sequence", check=_reference,
                             group=_GRIDS)

    @property
    def resample(self):
        """Whether inputs are resampled to the model's voxel size."""
        return not self.keep_input_spacing

    def validate(self):
        """A checked copy, the reference modality written as hved_tf writes it."""
        checked = dataclasses.replace(self, reference=_modality(self.reference))
        check_fields(checked)
        return checked


def parse_window(values, name="window", keywords=("auto",)):
    """A window flag's value: one of `keywords` as given (["auto"] or nothing: "auto"), else
    three integers."""
    values = list(values or ["auto"])
    if len(values) == 1 and values[0] in keywords:
        return values[0]
    try:
        return tuple(int(w) for w in values)
    except ValueError:
        raise ValueError(f"--{name} must be {' or '.join(repr(k) for k in keywords)} or three "
                         f"integers, got {','.join(values)!r}.") from None


def validation_options(patch, window="patch"):
    """Validation's settings: windows of the training patch (`window` "patch"; "auto": the
    whole volume where it fits, else the patch; or given sizes), no overlap, the posterior
    mean (fast and repeatable)."""
    if window not in ("patch", "auto"):
        three_sizes("validation_window", tuple(window), 8, "'patch', 'auto' or 64,64,64")
    window = tuple(patch) if window == "patch" else None if window == "auto" else tuple(window)
    return InferenceOptions(window=window, overlap=0.0, blend="constant", num_samples=1,
                            tta_axes=())
