"""Cropping to the non-zero bounding box with the original release's rule, and its inverse.

The release cropped every BraTS subject before training: for each axis, the planes that are not
entirely zero (in the voxel-wise maximum over modalities) give [lo, hi); when hi - lo < 128 the box
grows by m = (128 - (hi - lo)) // 2 below and m + 1 above, and if lo falls below 0 the box slides
up to start at 0. The upper end is then clipped to the volume, as NumPy slicing did in the
release. Pure NumPy.

The release applied that rule to the files' voxel order (BraTS files are LPS), and reoriented to
RAS afterwards; this package reorients first. Along an axis that the reorientation reverses,
"above" in the file is "below" in RAS, so `crop_box(volume, flipped=...)` applies the rule to
the reversed axis and maps the box back: the same voxels as the release's box, whatever the
files' orientation (`hved_tf.io.nifti.Geometry.ras_flips` says which axes a file reverses).
"""
from __future__ import annotations

import dataclasses

import numpy as np

MIN_EXTENT = 128


@dataclasses.dataclass(frozen=True)
class CropBox:
    """[lo, hi) per spatial axis, and the shape of the volume it was taken from."""
    lo: tuple[int, ...]           # three values each
    hi: tuple[int, ...]
    full_shape: tuple[int, ...]

    @property
    def slices(self) -> tuple:
        """The box as slices of the full volume."""
        return tuple(slice(a, b) for a, b in zip(self.lo, self.hi))

    @property
    def shape(self) -> tuple:
        """The cropped shape."""
        return tuple(b - a for a, b in zip(self.lo, self.hi))

    def to_dict(self) -> dict:
        """The box as JSON-ready lists.

        Returns:
            {"lo", "hi", "full_shape"}.
        """
        return {"lo": list(self.lo), "hi": list(self.hi), "full_shape": list(self.full_shape)}

    @classmethod
    def from_dict(cls, d: dict) -> CropBox:
        """The box of `to_dict`.

        Args:
            d: {"lo", "hi", "full_shape"}.

        Returns:
            The CropBox.
        """
        return cls(tuple(d["lo"]), tuple(d["hi"]), tuple(d["full_shape"]))


def _grow(lo, hi, min_extent):
    if hi - lo < min_extent:
        margin = (min_extent - (hi - lo)) // 2
        hi = hi + margin + 1
        lo = lo - margin
    if lo < 0:
        hi -= lo
        lo = 0
    return lo, hi


def crop_box(volume: np.ndarray, min_extent: int = MIN_EXTENT,
             flipped: tuple = (False, False, False)) -> CropBox:
    """The non-zero box of a volume by the release's rule (grown to `min_extent` per axis),
    applied in the file's voxel order.

    Args:
        volume: [X, Y, Z] or [X, Y, Z, M], RAS.
        min_extent: the smallest extent per axis.
        flipped: per RAS axis, True when the file stores it reversed.

    Returns:
        The CropBox.
    """
    volume = np.asarray(volume)
    if volume.ndim == 4:
        nonzero = np.any(volume != 0, axis=3)
    elif volume.ndim == 3:
        nonzero = volume != 0
    else:
        raise ValueError(f"crop_box takes a [X, Y, Z] or [X, Y, Z, M] volume, got {volume.shape}.")
    shape = nonzero.shape
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        keep = np.any(nonzero, axis=other)
        if flipped[axis]:
            keep = keep[::-1]
        keep = np.flatnonzero(keep)
        a, b = (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, shape[axis])
        a, b = _grow(a, b, min_extent)
        b = min(b, shape[axis])
        if flipped[axis]:
            a, b = shape[axis] - b, shape[axis] - a
        lo.append(a)
        hi.append(b)
    return CropBox(tuple(lo), tuple(hi), tuple(int(s) for s in shape))


def crop(volume: np.ndarray, box: CropBox) -> np.ndarray:
    """The box's part of a volume.

    Args:
        volume: [X, Y, Z, ...].
        box: the box.

    Returns:
        A view of the part.
    """
    return np.asarray(volume)[box.slices]


def uncrop(cropped: np.ndarray, box: CropBox, fill: float = 0) -> np.ndarray:
    """Pastes a cropped array back into the full grid.

    Args:
        cropped: [x, y, z, ...] of the box's shape.
        box: the box.
        fill: the value elsewhere.

    Returns:
        [X, Y, Z, ...] of the full shape.
    """
    cropped = np.asarray(cropped)
    if tuple(cropped.shape[:3]) != box.shape:
        raise ValueError(f"Cropped array has spatial shape {cropped.shape[:3]}, the box {box.shape}.")
    full = np.full(tuple(box.full_shape) + cropped.shape[3:], fill, dtype=cropped.dtype)
    full[box.slices] = cropped
    return full
