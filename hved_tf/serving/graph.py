"""The preprocessing chain as TensorFlow graph ops, for the `segment_raw` export signature.

Each function mirrors its NumPy counterpart (crop.py, normalise.py, histogram.py) and is tested
against it:

- `crop_box`: the release's box of the non-zero voxels, grown to at least 128 voxels per axis;
- `pad_minimum`: NumPy's `np.pad(mode="minimum")`, axis by axis as NumPy does it;
- `mean_plus_mask`: voxels above the mean, dilated twice (6-connectivity), holes filled. Hole
  filling is exact: the background reachable from the volume's border is flooded by repeated
  6-connected dilation inside the background until it stops growing (a `tf.while_loop`; as
  many iterations as the longest path through the background, a few hundred at most);
- `percentiles`: NumPy's linear interpolation, in float64;
- `apply_landmarks` and `whiten`: the piecewise-linear Nyúl map and the whitening;
- `normalise_intensities`: the whole chain on [X, Y, Z, 4] with a presence mask [4].
"""
from __future__ import annotations

import tensorflow as tf

from hved_tf.preprocessing.crop import MIN_EXTENT
from hved_tf.preprocessing.histogram import (DEFAULT_CUTOFF, PERCENTILE_POINTS,
                                             PERCENTILES_INNER, standardise_cutoff)
from hved_tf.preprocessing.normalise import WHITENING_MIN_STD


def crop_box(image, min_extent=MIN_EXTENT):
    """(lo [3], hi [3]) int32 of image [X, Y, Z, M], as crop.crop_box."""
    nonzero = tf.reduce_any(tf.not_equal(image, 0), axis=-1)
    shape = tf.shape(nonzero)
    lo, hi = [], []
    for axis in range(3):
        other = [a for a in range(3) if a != axis]
        keep = tf.cast(tf.where(tf.reduce_any(nonzero, axis=other))[:, 0], tf.int32)
        any_kept = tf.size(keep) > 0
        a = tf.where(any_kept, tf.reduce_min(tf.concat([keep, [shape[axis]]], 0)), 0)
        b = tf.where(any_kept, tf.reduce_max(tf.concat([keep, [-1]], 0)) + 1, shape[axis])
        short = b - a < min_extent
        margin = (min_extent - (b - a)) // 2
        b = tf.where(short, b + margin + 1, b)
        a = tf.where(short, a - margin, a)
        b = tf.where(a < 0, b - a, b)
        a = tf.maximum(a, 0)
        lo.append(a)
        hi.append(tf.minimum(b, shape[axis]))
    return tf.stack(lo), tf.stack(hi)


def pad_minimum(volume, p):
    """np.pad(volume [X, Y, Z, ...], p on each spatial side, mode="minimum")."""
    for axis in range(3):
        line_min = tf.reduce_min(volume, axis=axis, keepdims=True)
        reps = [1] * len(volume.shape)
        reps[axis] = p
        side = tf.tile(line_min, reps)
        volume = tf.concat([side, volume, side], axis=axis)
    return volume


def _dilate6(mask):
    """One 6-connected binary dilation (the volume's outside counts as False)."""
    padded = tf.pad(mask, [[1, 1]] * 3)
    out = mask
    for axis in range(3):
        for shift in (0, 2):
            begin = [1, 1, 1]
            begin[axis] = shift
            out = out | tf.slice(padded, begin, tf.shape(mask))
    return out


def fill_holes(mask):
    """scipy.ndimage.binary_fill_holes with 6-connectivity, exactly (see the docstring)."""
    background = tf.logical_not(mask)
    border = tf.pad(tf.zeros(tf.shape(mask) - 2, tf.bool), [[1, 1]] * 3, constant_values=True)
    outside = background & border

    def grow(reached, _):
        return _dilate6(reached) & background, reached

    outside, _ = tf.while_loop(lambda r, prev: tf.reduce_any(r != prev), grow,
                               (_dilate6(outside) & background, outside))
    return tf.logical_not(outside)


def mean_plus_mask(volume):
    x = tf.cast(volume, tf.float64)
    mask = x > tf.reduce_mean(x)
    mask = _dilate6(_dilate6(mask))
    return fill_holes(mask)


def percentiles(values, points):
    """np.percentile(values, 100 * points) (linear interpolation), float64."""
    values = tf.sort(tf.cast(values, tf.float64))
    n = tf.cast(tf.size(values), tf.float64)
    pos = tf.constant(points, tf.float64) * (n - 1.0)
    lo = tf.floor(pos)
    hi = tf.minimum(lo + 1.0, n - 1.0)
    a = tf.gather(values, tf.cast(lo, tf.int32))
    b = tf.gather(values, tf.cast(hi, tf.int32))
    return a + (b - a) * (pos - lo)


def apply_landmarks(volume, mask, landmarks, cutoff=DEFAULT_CUTOFF):
    """histogram.apply_landmarks in the graph (float64 out). landmarks: [13] float64."""
    lo, hi = standardise_cutoff(cutoff)
    points = [lo, *PERCENTILES_INNER, hi]
    perc = tf.gather(percentiles(tf.boolean_mask(volume, mask), points), PERCENTILE_POINTS)
    target = tf.gather(tf.cast(landmarks, tf.float64), PERCENTILE_POINTS)
    dx = perc[1:] - perc[:-1]
    flat_piece = tf.equal(dx, 0.0)
    slope = tf.where(flat_piece, tf.zeros_like(dx),
                     (target[1:] - target[:-1]) / tf.where(flat_piece, tf.ones_like(dx), dx))
    intercept = target[:-1] - slope * perc[:-1]
    x = tf.cast(volume, tf.float64)
    flat = tf.reshape(x, [-1])
    piece = tf.searchsorted(perc[1:-1], flat, side="right")
    mapped = tf.gather(slope, piece) * flat + tf.gather(intercept, piece)
    return tf.reshape(mapped, tf.shape(x))


def whiten(volume, mask):
    """normalise.whiten in float64."""
    volume = tf.cast(volume, tf.float64)
    values = tf.boolean_mask(volume, mask)
    mean = tf.reduce_mean(values)
    std = tf.sqrt(tf.reduce_mean(tf.square(values - mean)))
    return (volume - mean) / tf.maximum(std, tf.constant(WHITENING_MIN_STD, tf.float64))


def normalise_intensities(image, present, landmarks, padding=10, cutoff=DEFAULT_CUTOFF):
    """normalise.normalise_intensities in the graph: image [X, Y, Z, 4] float32, present [4]
    bool, landmarks [4, 13] float64 -> float32 [X, Y, Z, 4] (absent channels zeros)."""
    p = int(padding)
    padded = pad_minimum(image, p) if p else image
    mask = tf.ones(tf.shape(padded)[:3], tf.bool)
    for i in range(4):
        mask = tf.cond(present[i], lambda i=i: mask & mean_plus_mask(padded[..., i]),
                       lambda: mask)
    tf.debugging.assert_greater(tf.reduce_sum(tf.cast(mask, tf.int32)), 0, message=(
        "The foreground (and of the modalities' 'mean_plus' masks) is empty: are the "
        "modalities co-registered?"))
    channels = []
    for i in range(4):
        def standardised(i=i):
            standard = apply_landmarks(padded[..., i], mask, landmarks[i], cutoff)
            return tf.cast(whiten(standard, mask), tf.float32)
        channels.append(tf.cond(present[i], standardised,
                                lambda: tf.zeros(tf.shape(padded)[:3], tf.float32)))
    out = tf.stack(channels, axis=-1)
    if p:
        out = out[p:-p, p:-p, p:-p]
    return out
