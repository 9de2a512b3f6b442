"""Test-time augmentation by mirroring, written once in TensorFlow ops: used inside the traced
window predictor (`hved_tf.inference.predictor`) and inside an export's graph alike.

`with_flips(infer, image, axes)`: `infer(image)` -> (probabilities, variance, recon), each
[B, x, y, z, K], run on the image mirrored along every subset of the spatial `axes` (2^k
flips, the unflipped one first), each output mirrored back and averaged. The variance of the
class probabilities (summed over the classes) follows the law of total variance: the mean of
each flip's own variance across its z samples plus the variance of the flips' means, so the
uncertainty includes the spread over flips.
"""
from __future__ import annotations

import itertools

import tensorflow as tf


def flip_sets(axes):
    """Every subset of the spatial `axes` (0, 1, 2), the empty one first."""
    axes = tuple(sorted(set(int(a) for a in axes)))
    return [combo for k in range(len(axes) + 1) for combo in itertools.combinations(axes, k)]


def with_flips(infer, image, axes):
    if not axes:
        return infer(image)
    results = []
    for flips in flip_sets(axes):
        dims = [1 + a for a in flips]               # after the batch axis
        out = infer(tf.reverse(image, dims) if dims else image)
        results.append([tf.reverse(t, dims) if dims else t for t in out])
    n = float(len(results))
    probs = tf.add_n([r[0] for r in results]) / n
    within = tf.add_n([r[1] for r in results]) / n
    between = tf.reduce_sum(tf.add_n([tf.square(r[0] - probs) for r in results]) / n,
                            axis=-1, keepdims=True)
    recon = tf.add_n([r[2] for r in results]) / n
    return probs, within + between, recon
