"""Slices of RAS volumes for pictures (NumPy only): gray levels, the tumour's centre, planes
with their orientation marks, label overlays.

A slice is shown as a radiologist reads it in neurological convention: the patient's right on
the right of the picture, anterior (axial) or superior (coronal, sagittal) at the top. `PLANES`
holds, for each plane, the RAS axis it cuts and the marks of its left, right, top and bottom
edges.
"""
from __future__ import annotations

import numpy as np

# BraTS classes in training values: 1 necrotic / non-enhancing core, 2 oedema, 3 enhancing.
CLASS_COLOURS = {1: (0.90, 0.10, 0.10), 2: (0.10, 0.80, 0.10), 3: (0.15, 0.35, 1.00)}
CLASS_LEGEND = {1: "necrotic / non-enhancing core (NCR/NET)", 2: "oedema (ED)",
                3: "enhancing tumour (ET)"}
# plane: (RAS axis cut, (left, right, top, bottom) marks)
PLANES = {"axial": (2, ("L", "R", "A", "P")),
          "coronal": (1, ("L", "R", "S", "I")),
          "sagittal": (0, ("P", "A", "S", "I"))}


def normalise(volume, foreground=None):
    """Gray levels in [0, 1] between the 1st and 99th percentiles (of the foreground if given)."""
    volume = np.asarray(volume, np.float32)
    values = volume[foreground] if foreground is not None and np.any(foreground) else volume
    lo, hi = np.percentile(values, [1, 99])
    return np.clip((volume - lo) / max(float(hi - lo), 1e-6), 0, 1)


def foreground(image, mask):
    """The brain: voxels where a present sequence is above its own minimum (the background of
    raw, skull-stripped volumes and of whitened ones alike). image [X, Y, Z, 4], mask [4]."""
    present = [i for i in range(image.shape[-1]) if mask[i] > 0]
    if not present:
        return np.ones(image.shape[:3], bool)
    channels = np.asarray(image)[..., present]
    return np.any(channels > channels.reshape(-1, len(present)).min(0), axis=-1)


def tumour_centre(labels):
    """The centre of the tumour's voxels, else of the volume."""
    tumour = np.argwhere(np.asarray(labels) > 0)
    if len(tumour):
        return tuple(int(v) for v in tumour.mean(0).round())
    return tuple(s // 2 for s in np.shape(labels))


def plane_slice(volume, plane, index):
    """The slice `index` of a RAS volume ([X, Y, Z] or [X, Y, Z, C]) in `plane`, as rows x
    columns ready to show (see the module docstring for the orientation)."""
    axis = PLANES[plane][0]
    tile = np.take(np.asarray(volume), index, axis=axis)
    return np.swapaxes(tile, 0, 1)[::-1]           # rows: the later RAS axis, upwards


def overlay_rgba(labels, alpha=0.55):
    """RGBA [..., 4] of the classes' colours where labels > 0, transparent elsewhere."""
    labels = np.asarray(labels)
    rgba = np.zeros(labels.shape + (4,), np.float32)
    for value, colour in CLASS_COLOURS.items():
        rgba[labels == value] = (*colour, alpha)
    return rgba


def overlay(gray, labels, alpha=0.55):
    """RGB [..., 3]: the classes' colours blended over gray levels in [0, 1]."""
    rgb = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=-1)
    rgba = overlay_rgba(labels, alpha)
    return rgb * (1 - rgba[..., 3:]) + rgba[..., :3] * rgba[..., 3:]
