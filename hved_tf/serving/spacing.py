"""Resampling to the model's voxel size and back as TensorFlow graph ops, for `segment_raw`.

Each function mirrors `hved_tf.preprocessing.resample` (SciPy) and is tested against it:

- `plan(shape, zooms, spacing)`: the output shape of a `SpacingChange`, `round(shape * zooms /
  spacing)` voxels per axis (at least one), and whether the voxel sizes agree to 1% (then
  nothing is resampled);
- `to_model_image`: the cubic B-spline resampling of `image_resampled` (SciPy's
  `affine_transform(order=3, mode="nearest")`), the zero background kept where the linearly
  resampled support covers less than half a voxel;
- `to_input_linear`: linear resampling back to the input's grid (`SpacingChange.to_input(.., 1)`).

An axis-aligned change of voxel size is separable, so each is one matrix per axis applied with
`einsum`: for linear interpolation the matrix holds the two weights of each output voxel; for
the cubic spline it is the spline's four weights times the inverse of the spline prefilter.
SciPy pads each axis by 12 voxels repeating the edge value before prefiltering (its
'nearest' mode); the matrix does the same, so the boundary of the prefilter (mirror here) sits
12 voxels out, where its effect on the inside is below 0.27^12 ~ 1e-7. The matrices are built in
float64 (a few hundred voxels per axis: an inverse of at most ~600x600) and applied in float32.
"""
from __future__ import annotations

import tensorflow as tf

from hved_tf.preprocessing.resample import SPACING_RTOL

SPLINE_PAD = 12          # SciPy's padding before the prefilter in mode "nearest"


def plan(shape, zooms, spacing):
    """(out_shape int32 [3], same bool []) for a grid of `shape` [3] and voxel sizes `zooms`
    [3] (mm) brought to `spacing` [3] (mm)."""
    zooms = tf.cast(zooms, tf.float64)
    spacing = tf.cast(spacing, tf.float64)
    same = tf.reduce_all(tf.abs(zooms - spacing) <= SPACING_RTOL * tf.abs(spacing))
    out = tf.round(tf.cast(shape, tf.float64) * zooms / spacing)
    return tf.maximum(1, tf.cast(out, tf.int32)), same


def _positions(n, m):
    """Input coordinates of the m output voxels' centres over n input voxels (faces shared)."""
    scale = tf.cast(n, tf.float64) / tf.cast(m, tf.float64)
    return scale * tf.range(tf.cast(m, tf.float64)) + 0.5 * scale - 0.5


def linear_matrix(n, m):
    """[m, n] float64: linear interpolation from n voxels onto m over the same field of view,
    the edge values repeated beyond the faces."""
    x = tf.clip_by_value(_positions(n, m), 0.0, tf.cast(n - 1, tf.float64))
    low = tf.cast(tf.floor(x), tf.int32)
    high = tf.minimum(low + 1, n - 1)
    frac = (x - tf.cast(low, tf.float64))[:, None]
    return ((1.0 - frac) * tf.one_hot(low, n, dtype=tf.float64)
            + frac * tf.one_hot(high, n, dtype=tf.float64))


def _bspline3(t):
    t = tf.abs(t)
    return tf.where(t < 1.0, 2.0 / 3.0 - t ** 2 + t ** 3 / 2.0,
                    tf.where(t < 2.0, (2.0 - t) ** 3 / 6.0, tf.zeros_like(t)))


def cubic_matrix(n, m):
    """[m, n] float64: cubic B-spline interpolation (with its prefilter) from n voxels onto m
    over the same field of view, as SciPy's mode "nearest" (see the module docstring)."""
    size = n + 2 * SPLINE_PAD
    index = tf.range(size)
    # The prefilter: s_i = (c_{i-1} + 4 c_i + c_{i+1}) / 6, mirrored at both ends.
    left = tf.where(index > 0, index - 1, 1)
    right = tf.where(index < size - 1, index + 1, size - 2)
    system = (4.0 * tf.eye(size, dtype=tf.float64) + tf.one_hot(left, size, dtype=tf.float64)
              + tf.one_hot(right, size, dtype=tf.float64)) / 6.0
    edge = tf.one_hot(tf.clip_by_value(index - SPLINE_PAD, 0, n - 1), n, dtype=tf.float64)
    coefficients = tf.linalg.solve(system, edge)                    # [size, n]
    x = _positions(n, m) + SPLINE_PAD
    first = tf.floor(x) - 1.0
    weights = tf.zeros([m, size], tf.float64)
    for k in range(4):
        tap = first + k
        column = tf.clip_by_value(tf.cast(tap, tf.int32), 0, size - 1)
        weights += _bspline3(x - tap)[:, None] * tf.one_hot(column, size, dtype=tf.float64)
    return weights @ coefficients


def _separable(volume, matrices):
    """volume [X, Y, Z, C] float32 with one [out, in] matrix applied along each spatial axis."""
    mx, my, mz = (tf.cast(a, tf.float32) for a in matrices)
    volume = tf.einsum("ix,xyzc->iyzc", mx, volume)
    volume = tf.einsum("jy,xyzc->xjzc", my, volume)
    return tf.einsum("kz,xyzc->xykc", mz, volume)


def to_model_image(image, out_shape):
    """image [X, Y, Z, C] resampled cubically onto `out_shape` [3] over the same field of view,
    each channel's zero background kept zero (as `image_resampled`)."""
    shape = tf.shape(image)[:3]
    cubic = [cubic_matrix(shape[a], out_shape[a]) for a in range(3)]
    linear = [linear_matrix(shape[a], out_shape[a]) for a in range(3)]
    out = _separable(image, cubic)
    support = _separable(tf.cast(tf.not_equal(image, 0.0), tf.float32), linear)
    return tf.where(support < 0.5, tf.zeros_like(out), out)


def to_input_linear(volume, in_shape):
    """volume [X', Y', Z', C] on the model's grid resampled linearly back onto the input's
    `in_shape` [3]."""
    shape = tf.shape(volume)[:3]
    return _separable(volume, [linear_matrix(shape[a], in_shape[a]) for a in range(3)])
