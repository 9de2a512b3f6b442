"""The release's spatial augmentation (NumPy/SciPy): once per visit of a subject, on the whole
padded volume, shared by the visit's windows.

The release (NiftyNet) padded each volume by `volume_padding` voxels (images with their
channel's minimum, labels with 0), then on every read of a volume drew, per axis and
independently, a zoom factor in [1 - s, 1 + s] and a flip with probability 1/2, zoomed the
images with cubic splines (order 3) and the labels by nearest neighbour (order 0), and only then
sampled its windows from the result. `pad_volume`, `draw_visit_transform` and
`transform_volume` do the same; `hved_tf.data.pipeline` uses them for
`--spatial_augmentation=release` (today's isotropic, trilinear, per-window augmentation,
`augment.py`, is the other choice).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class VisitTransform:
    zooms: tuple          # per axis, in [1 - s, 1 + s]
    flips: tuple          # per axis, True: reversed

    def output_shape(self, shape):
        """The spatial shape after the zoom (scipy.ndimage.zoom's: round(size * zoom))."""
        return tuple(int(round(s * z)) for s, z in zip(shape, self.zooms))


def draw_visit_transform(rng, scaling, flip_axes):
    """Independent uniform zooms per axis and flips (p = 1/2) on `flip_axes`."""
    zooms = tuple(float(z) for z in rng.uniform(1.0 - scaling, 1.0 + scaling, 3))
    draws = rng.uniform(size=3)
    flips = tuple(bool(axis in flip_axes and draws[axis] < 0.5) for axis in range(3))
    return VisitTransform(zooms, flips)


def pad_volume(volume, padding, pad_value):
    """volume [X, Y, Z, ...] padded by `padding` voxels on each side of each spatial axis with
    `pad_value` (one value per channel of a 4-D volume, or one for all)."""
    volume = np.asarray(volume)
    if not padding:
        return volume
    shape = tuple(s + 2 * padding for s in volume.shape[:3]) + volume.shape[3:]
    out = np.empty(shape, volume.dtype)
    out[...] = np.asarray(pad_value, volume.dtype)
    out[padding:-padding, padding:-padding, padding:-padding] = volume
    return out


def transform_volume(image, label, transform):
    """(image [X', Y', Z', C] float32 zoomed with cubic splines, label [X', Y', Z'] zoomed by
    nearest neighbour), then flipped; the zoom as scipy.ndimage.zoom computes it."""
    zooms = transform.zooms
    if any(z != 1.0 for z in zooms):
        image = np.stack([ndimage.zoom(np.asarray(image[..., c], np.float32), zooms, order=3)
                          for c in range(image.shape[-1])], axis=-1)
        label = ndimage.zoom(np.asarray(label), zooms, order=0)
    axes = tuple(a for a, flip in enumerate(transform.flips) if flip)
    if axes:
        image, label = np.flip(image, axes), np.flip(label, axes)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(label)

