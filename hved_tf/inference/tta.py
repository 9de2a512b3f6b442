"""Test-time augmentation by mirroring, written once in TensorFlow ops: used inside the traced
window predictor (`hved_tf.inference.predictor`) and inside an export's graph alike.

`with_flips(infer, image, axes)`: `infer(image)` -> (probabilities, variance, recon), each
[B, x, y, z, K], run on the image mirrored along every subset of the spatial `axes` (2^k
flips, the unflipped one first), the probabilities mirrored back and averaged. The variance of
the class probabilities (summed over the classes) follows the law of total variance: the mean of
each flip's own variance across its z samples plus the variance of the flips' means, so the
uncertainty includes the spread over flips. The reconstructions are the unflipped window's:
mirroring is there for the segmentation (as in nnU-Net), and decoding the four sequences of
every flip would cost 7 more passes of four image decoders (inside a traced function the
flipped windows' unused reconstructions are pruned from the graph).

The flips run one after the other (each starts once the previous one's sums exist): on a CPU
running them side by side gains nothing and holds every flip's activations at once.
"""
from __future__ import annotations

import itertools

from typing import Any, Callable, Sequence

import tensorflow as tf


def flip_sets(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """The mirror flips of test-time augmentation.

    Args:
        axes: spatial axes among 0, 1, 2.

    Returns:
        Every subset of them, the empty one first.
    """
    axes = tuple(sorted(set(int(a) for a in axes)))
    return [combo for k in range(len(axes) + 1) for combo in itertools.combinations(axes, k)]


def with_flips(infer: Callable, image: Any, axes: Sequence[int]) -> tuple:
    """Inference averaged over the mirror flips of `axes`, by running sums rather than a list
    of the flips' outputs: four accumulators stay in memory whatever the number of flips (the
    between-flip variance is E[p^2] - E[p]^2, exact enough for probabilities in [0, 1]).

    Args:
        infer: `infer(image)` -> (probabilities, variance [..., 1], recon), batch first.
        image: [B, X, Y, Z, C].
        axes: the spatial axes mirrored (none: `infer(image)` as it is).

    Returns:
        (mean probabilities, within- plus between-flip variance, recon of the unflipped
        image).
    """
    if not axes:
        return infer(image)
    sets = flip_sets(axes)
    sums: list | None = None
    recon = None
    for flips in sets:
        dims = [1 + a for a in flips]               # after the batch axis
        x = image
        if sums is not None:                        # one flip after the other
            with tf.control_dependencies([sums[0], sums[2]]):
                x = tf.identity(image)
        out = infer(tf.reverse(x, dims) if dims else x)
        probs, var = [tf.reverse(t, dims) if dims else t for t in out[:2]]
        terms = [probs, tf.square(probs), var]
        if sums is None:
            sums, recon = terms, out[2]
        else:
            sums = [a + b for a, b in zip(sums, terms)]
    assert sums is not None                       # the empty flip is always one of the sets
    n = float(len(sets))
    mean, mean_sq, within = [t / n for t in sums]
    between = tf.reduce_sum(tf.maximum(mean_sq - tf.square(mean), 0.0), axis=-1, keepdims=True)
    return mean, within + between, recon
