"""Inputs at the model's voxel size: resampled to it, segmented, and every output brought back
to the input's grid.

`segment_at_model_spacing(segmenter, image, mask, zooms, ...)` wraps any Segmenter's
`segment_raw`. When the input's voxel sizes `zooms` (RAS order, mm) differ from
`segmenter.spacing` (the model's, recorded at training) by more than 1%, the image is
resampled to the model's voxel size over the same field of view (cubic, its zero background
kept: `hved_tf.preprocessing.resample`), segmented there, and the outputs are resampled back to
the input's grid: the class probabilities linearly, then their argmax gives the labels (never
the labels themselves, as nnU-Net does) and their entropy the uncertainty; the post-processing
rules run again on the input's grid; the variance, the synthesised sequences and the
preprocessed image are resampled linearly.

With `resample=False` (`--keep_input_spacing`) the input is segmented on its own grid; when its
voxel size differs from the model's, a warning names both.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from hved_tf.inference.segmenter import finish, postprocessed, whole_box
from hved_tf.io.nifti import available_memory
from hved_tf.preprocessing.resample import (check_memory, image_resampled, mm, same_spacing,
                                            spacing_change)

log = logging.getLogger("hved_tf")
UNKNOWN_SPACING = (1.0, 1.0, 1.0)      # what a model that records none is taken to work at


def model_spacing(segmenter: Any) -> tuple[float, ...]:
    """The voxel size the segmenter's model was trained at.

    Args:
        segmenter: a Segmenter.

    Returns:
        mm per axis (1 mm, warned, when the model records none).
    """
    spacing = getattr(segmenter, "spacing", None)
    if spacing:
        return tuple(float(s) for s in spacing)
    log.warning("%s records no voxel size; taking it as %s (the release's). Export or train "
                "it again with this version to record it.",
                segmenter.identity.get("source", "The model"), mm(UNKNOWN_SPACING))
    return UNKNOWN_SPACING


def target_spacing(segmenter: Any, zooms: Sequence[float], resample: bool = True,
                   source: str = "the input") -> tuple[float, ...] | None:
    """The voxel size an input is segmented at.

    Args:
        segmenter: a Segmenter.
        zooms: the input's voxel sizes (mm).
        resample: False: segmented on its own grid (--keep_input_spacing; warned when the
            sizes differ).
        source: the input, for messages.

    Returns:
        The model's voxel sizes (mm), or None with `resample=False`.
    """
    spacing = model_spacing(segmenter)
    if resample:
        return spacing
    if not same_spacing(zooms, spacing):
        log.warning("%s has %s voxels but the model was trained at %s; segmenting it without "
                    "resampling (--keep_input_spacing), so it sees the anatomy at another "
                    "scale.", source, mm(zooms), mm(spacing))
    return None


def segmented_zooms(shape: Sequence[int], zooms: Sequence[float],
                    spacing: Sequence[float] | None) -> tuple[float, ...]:
    """The voxel sizes of the grid an input is segmented on.

    Args:
        shape: the input's shape.
        zooms: its voxel sizes (mm).
        spacing: `target_spacing`'s answer.

    Returns:
        mm per axis.
    """
    change = spacing_change(shape, zooms, spacing)
    return tuple(zooms) if change is None else change.out_zooms


def segment_at_model_spacing(segmenter: Any, image: np.ndarray, mask: np.ndarray,
                             zooms: Sequence[float], progress: Callable | None = None,
                             flipped: tuple = (False, False, False), resample: bool = True,
                             source: str = "the input") -> Any:
    """A raw image segmented at the model's voxel size, the outputs brought back to its grid
    (see the module docstring).

    Args:
        segmenter: a Segmenter.
        image: raw RAS [X, Y, Z, 4].
        mask: [4], the sequences present.
        zooms: the image's voxel sizes (mm).
        progress: `progress(done, total)` over the windows.
        flipped: the RAS axes the files store reversed.
        resample: of `target_spacing`.
        source: the input, for messages.

    Returns:
        A Segmentation on the image's own grid.
    """
    spacing = target_spacing(segmenter, zooms, resample, source)
    change = spacing_change(image.shape[:3], zooms, spacing)
    if change is None:
        return segmenter.segment_raw(image, mask, progress, flipped)
    check_memory(change.out_shape, image.shape[-1], source, available_memory())
    start = time.perf_counter()
    resampled = image_resampled(image, change.to_model)
    to_model_s = time.perf_counter() - start
    seg = segmenter.segment_raw(resampled, mask, progress, flipped)
    start = time.perf_counter()
    back = _outputs_on_input_grid(seg, change)
    back.timings = {**seg.timings, "resample_s": to_model_s + time.perf_counter() - start}
    back.settings = {**seg.settings, "input_spacing_mm": list(map(float, zooms)),
                     "model_spacing_mm": list(change.spacing), "resampled": True}
    return back


def _outputs_on_input_grid(seg, change):
    probabilities = change.to_input(seg.full("probabilities"), 1)
    extra = {name: change.to_input(seg.full(name), 1) for name in ("variance", "recon", "image")
             if name in seg}
    out = finish(probabilities, extra, whole_box(change.shape), {}, settings={})
    rules = seg.settings.get("export", seg.settings)       # an export's frozen settings
    return postprocessed(out, rules.get("et_threshold", 0), rules.get("min_component", 0),
                         rules.get("largest_component", False))
