"""The release's spatial augmentation (NumPy/SciPy): once per visit of a subject, on the whole
padded volume, shared by the visit's windows.

The release (NiftyNet 0.5.0's layers, in this order) padded each volume by `volume_padding`
voxels with `np.pad(mode="minimum")` (each padded line takes the minimum of its line, for
images and labels alike), then on every read of a volume drew, per axis and independently, a
flip with probability 1/2 and a zoom factor in [1 - s, 1 + s]; it flipped first, then zoomed
the images with cubic splines (order 3) and the labels by nearest neighbour (order 0), and only
then sampled its windows from the result. When every zoom is below 1 it smoothed each volume
with a Gaussian first (antialiasing; sigma per axis from the zoom, `antialias_sigma`).

NiftyNet smoothed the label volume too: its guard skipped only volumes of negative
interpolation order, and the labels, float32 there, have order 0. The smoothed labels were then
zoomed by nearest neighbour and truncated to integers by the loss, so a class value next to a
lower one can drop by one. `label_filtering=True` (`--release_label_filtering`) reproduces that
quirk; by default labels are zoomed unsmoothed. See docs/explanation/faithfulness.md.

`pad_volume`, `draw_visit_transform` and `transform_volume` do the same; `hved_tf.data.pipeline`
uses them for `--spatial_augmentation=release` (today's isotropic, trilinear, per-window
augmentation, `augment.py`, is the other choice).
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


def pad_line_minimum(volume, padding):
    """volume [X, Y, Z, ...] padded by `padding` voxels on each side of each spatial axis as
    `np.pad(mode="minimum")` pads (axis by axis, each padded line the minimum of its line)."""
    volume = np.asarray(volume)
    if not padding:
        return volume
    return np.pad(volume, [(padding, padding)] * 3 + [(0, 0)] * (volume.ndim - 3),
                  mode="minimum")


FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def antialias_sigma(zooms):
    """Gaussian sigma per axis (voxels) smoothing a volume before it is zoomed by `zooms`, or
    None when any zoom is 1 or more (then nothing is smoothed). The point-spread function of
    a voxel k = 1/zoom times larger, minus the one the volume has:
    sqrt(k^2 - 1) / (2 sqrt(2 ln 2)) (Cardoso et al., MICCAI 2015; NiftyNet's rule)."""
    zooms = np.asarray(zooms, np.float64)
    if not np.all(zooms < 1.0):
        return None
    return np.sqrt((1.0 / zooms) ** 2 - 1.0) / FWHM_PER_SIGMA


def _zoom(volume, zooms, order, sigma):
    volume = np.asarray(volume, np.float32)
    if sigma is not None:
        volume = ndimage.gaussian_filter(volume, sigma)
    return ndimage.zoom(volume, zooms, order=order)


def transform_volume(image, label, transform, label_filtering=False):
    """The visit's volume: flipped, then image [X', Y', Z', C] float32 zoomed with cubic
    splines (antialiased when every zoom is below 1), label [X', Y', Z'] zoomed by nearest
    neighbour, as scipy.ndimage.zoom computes it. `label_filtering`: the release's quirk, the
    label volume smoothed as the images are, then truncated to integers (module docstring)."""
    axes = tuple(a for a, flip in enumerate(transform.flips) if flip)
    if axes:
        image, label = np.flip(image, axes), np.flip(label, axes)
    zooms = transform.zooms
    if any(z != 1.0 for z in zooms):
        sigma = antialias_sigma(zooms)
        image = np.stack([_zoom(image[..., c], zooms, 3, sigma)
                          for c in range(image.shape[-1])], axis=-1)
        label = np.asarray(label)
        if label_filtering and sigma is not None:
            label = np.trunc(_zoom(label, zooms, 0, sigma)).astype(label.dtype)
        else:
            label = ndimage.zoom(label, zooms, order=0)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(label)

