"""Augmentation as TF ops: random flips, rotation and scaling, seeded and reproducible.

Every function takes a `seed` of shape [2] (int32/int64) and uses stateless random ops, so the
same seed gives the same result wherever the op runs (in a tf.data map, on any worker).
Images are resampled trilinearly, labels by nearest neighbour, with one and the same transform;
samples falling outside the input take the nearest edge value.
"""
from __future__ import annotations

import math

import tensorflow as tf


def random_flip(image, label, axes, seed):
    """Flips image [X, Y, Z, C] and label [X, Y, Z, 1] along each of `axes` with p = 1/2."""
    if not axes:
        return image, label
    draws = tf.random.stateless_uniform([len(axes)], seed=seed)               # [n]
    for k, axis in enumerate(axes):
        flip = draws[k] < 0.5
        image = tf.cond(flip, lambda im=image: tf.reverse(im, [axis]), lambda im=image: im)
        label = tf.cond(flip, lambda lb=label: tf.reverse(lb, [axis]), lambda lb=label: lb)
    return image, label


def _rotation(angles):
    """3x3 rotation from angles [3] (radians) about the three axes."""
    cx, cy, cz = tf.unstack(tf.cos(angles))
    sx, sy, sz = tf.unstack(tf.sin(angles))
    one, zero = tf.ones([]), tf.zeros([])
    rx = tf.stack([[one, zero, zero], [zero, cx, -sx], [zero, sx, cx]])
    ry = tf.stack([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rz = tf.stack([[cz, -sz, zero], [sz, cz, zero], [zero, zero, one]])
    return rz @ ry @ rx


def random_affine_matrix(seed, rotation_degrees=0.0, scaling=0.0):
    """Output -> input map [3, 3]: a rotation within ±rotation_degrees about each axis and an
    isotropic zoom by a factor within 1 ± scaling."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    angles = tf.random.stateless_uniform([3], seeds[0], -1.0, 1.0) * (
        rotation_degrees * math.pi / 180.0)
    zoom = 1.0 + tf.random.stateless_uniform([], seeds[1], -1.0, 1.0) * scaling
    # Sampling the input at M·(p - c) + c with M = R^T / zoom shows the input rotated by R and
    # magnified by `zoom`.
    return tf.transpose(_rotation(angles)) / zoom


def resample(volume, matrix, out_shape, order):
    """Samples volume [X, Y, Z, C] at matrix·(p - c_out) + c_in for every output voxel p.

    order 1: trilinear; order 0: nearest. Coordinates are clamped to the volume.
    """
    in_shape = tf.shape(volume)[:3]
    in_f = tf.cast(in_shape, tf.float32)
    out_shape = tf.convert_to_tensor(out_shape, tf.int32)
    grids = tf.meshgrid(*[tf.range(out_shape[i], dtype=tf.float32) for i in range(3)],
                        indexing="ij")
    p = tf.reshape(tf.stack(grids, -1), [-1, 3])                              # [P, 3]
    c_out = (tf.cast(out_shape, tf.float32) - 1.0) / 2.0
    c_in = (in_f - 1.0) / 2.0
    src = tf.linalg.matvec(matrix[None], p - c_out) + c_in                    # [P, 3]
    src = tf.clip_by_value(src, 0.0, in_f - 1.0)
    if order == 0:
        idx = tf.cast(tf.round(src), tf.int32)
        out = tf.gather_nd(volume, idx)
    else:
        lo = tf.floor(src)
        frac = src - lo                                                        # [P, 3]
        lo = tf.cast(lo, tf.int32)
        hi = tf.minimum(lo + 1, in_shape - 1)
        out = 0.0
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    corner = tf.stack([(hi if d else lo)[:, k] for k, d in
                                       enumerate((dx, dy, dz))], -1)
                    w = 1.0
                    for k, d in enumerate((dx, dy, dz)):
                        w = w * (frac[:, k] if d else 1.0 - frac[:, k])
                    out = out + w[:, None] * tf.cast(tf.gather_nd(volume, corner), tf.float32)
        out = tf.cast(out, volume.dtype)
    return tf.reshape(out, tf.concat([out_shape, tf.shape(volume)[3:]], 0))


def random_affine(image, label, out_shape, seed, rotation_degrees=0.0, scaling=0.0):
    """One random rotation + zoom applied to image (trilinear) and label (nearest)."""
    matrix = random_affine_matrix(seed, rotation_degrees, scaling)
    return (resample(image, matrix, out_shape, order=1),
            resample(label, matrix, out_shape, order=0))


def center_crop(volume, out_shape):
    """The central out_shape part of volume [X, Y, Z, C]."""
    start = (tf.shape(volume)[:3] - tf.convert_to_tensor(out_shape, tf.int32)) // 2
    return tf.slice(volume, tf.concat([start, [0]], 0),
                    tf.concat([out_shape, [-1]], 0))
