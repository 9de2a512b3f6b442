"""Sliding-window inference settings (`InferenceOptions`) and validation's (`validation_options`)."""
from __future__ import annotations

import dataclasses

from hved_tf.config.checks import _positive_int, _sizes, choice, checked_class_weights
from hved_tf.config.vocabulary import INFERENCE_PRECISIONS
from hved_tf.modalities import MODALITIES

BLENDS = ("constant", "gaussian", "overwrite")   # overwrite: later windows win (the release)
WHOLE_VOLUME_MAX_VOXELS = 200 * 200 * 160   # u_hved with 10 samples: about 5 GB, 20 s on 2 cores


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """Sliding-window settings (hved_tf.inference). `window=None` ("auto"): the whole volume in
    one window when it holds at most `max_voxels` voxels (once padded to the network's
    multiple), else windows of `fallback_window` (the training patch)."""
    window: tuple | None = None
    border: int = 0
    overlap: float = 0.5
    blend: str = "gaussian"
    batch_size: int = 1
    num_samples: int = 10
    max_voxels: int = WHOLE_VOLUME_MAX_VOXELS
    fallback_window: tuple = (112, 112, 112)
    single_draw: bool = False          # with num_samples 1: one random z draw, not the mean
    et_threshold: int = 0              # post-processing (hved_tf.inference.postprocess); 0: off
    min_component: int = 0
    largest_component: bool = False
    tta_axes: tuple = ()               # mirror test-time augmentation along these axes
    # The prior correction (hved_tf.data.class_prior): whether to use the model's when it has
    # one, and the weights in force (filled in from the model by whoever loads it; () off).
    prior_correction: bool = True
    class_weights: tuple = ()
    precision: str = "float32"         # or "bfloat16" (hved_tf.inference.precision)

    @property
    def postprocessing(self):
        return bool(self.et_threshold or self.min_component or self.largest_component)

    def validate(self):
        if self.window is not None:
            _sizes("window", tuple(self.window), 8, "'auto' or 128,128,128")
        _sizes("fallback_window", tuple(self.fallback_window), 8)
        if isinstance(self.border, bool) or not isinstance(self.border, int) or self.border < 0:
            raise ValueError(f"--border must be an integer >= 0, got {self.border!r}.")
        if not (isinstance(self.overlap, (int, float)) and 0.0 <= self.overlap < 1.0):
            raise ValueError(f"--overlap must be in [0, 1), got {self.overlap!r}.")
        choice("blend", self.blend, BLENDS)
        for name in ("batch_size", "num_samples", "max_voxels"):
            _positive_int({"num_samples": "samples"}.get(name, name), getattr(self, name))
        for name in ("et_threshold", "min_component"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"--{name} must be an integer >= 0 (0: off), got {value!r}.")
        axes = tuple(self.tta_axes)
        if any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"--tta_axes must be distinct axes among 0, 1, 2, got {axes}.")
        choice("inference_precision", self.precision, INFERENCE_PRECISIONS)
        if self.class_weights:
            checked_class_weights("class weights of the prior correction", self.class_weights)
        return self


@dataclasses.dataclass(frozen=True)
class GridOptions:
    """How a subject's files reach the model's grid (predict, evaluate): resampled to the
    model's voxel size (`hved_tf.inference.spacing`; `resample=False`: --keep_input_spacing)
    and, for sequences on different grids, onto the grid of `reference` (a modality; "": the
    finest: `hved_tf.preprocessing.grids`)."""
    resample: bool = True
    reference: str = ""

    def validate(self):
        if self.reference:
            choice("reference_sequence", self.reference, MODALITIES)
        return self


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
        _sizes("validation_window", tuple(window), 8, "'patch', 'auto' or 64,64,64")
    window = tuple(patch) if window == "patch" else None if window == "auto" else tuple(window)
    return InferenceOptions(window=window, overlap=0.0, blend="constant", num_samples=1,
                            fallback_window=tuple(patch))
