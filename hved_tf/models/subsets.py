"""Drawing a modality subset per sample inside the training step, with TF random ops.

The draw is over the 15 subsets of `hved_tf.modalities.SUBSETS`, restricted per sample to the
subsets of the modalities the subject really has (`available`, [B, 4]):
- default, as in the paper: k uniform in 1..n (n = number available), then a subset of size k
  uniformly, i.e. P(s) = 1 / (n · C(n, |s|)) for every s within the available modalities;
- or an explicit probability table over the 15 subsets (the paper's mixture weights), renormalised
  over the subsets each sample can have.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from hved_tf.modalities import NUM_MODALITIES, SUBSETS, subset_matrix, validate_subset_probabilities


def subset_weights(available: Any, probabilities: Sequence[float] | None = None) -> Any:
    """The draw weights of the 15 subsets for each sample.

    Args:
        available: [B, 4], the modalities each subject has.
        probabilities: 15 weights in `SUBSET_CODES` order (None: the paper's draw).

    Returns:
        float32 [B, 15], unnormalised, 0 for the subsets a sample cannot have.
    """
    available = tf.cast(available, tf.float32)
    S = tf.constant(subset_matrix())                                       # [15, 4]
    allowed = tf.reduce_all(S[None] <= available[:, None, :], axis=-1)     # [B, 15]
    allowed = tf.cast(allowed, tf.float32)
    if probabilities is not None:
        p = tf.constant(validate_subset_probabilities(probabilities), tf.float32)
        return allowed * p[None]
    n = tf.reduce_sum(tf.cast(available > 0, tf.float32), axis=-1, keepdims=True)   # [B, 1]
    k = tf.constant([float(len(s)) for s in SUBSETS])[None]                # [1, 15]
    log_comb = tf.math.lgamma(n + 1.0) - tf.math.lgamma(k + 1.0) - tf.math.lgamma(
        tf.maximum(n - k, 0.0) + 1.0)                                      # [B, 15]
    return allowed / (tf.maximum(n, 1.0) * tf.exp(log_comb))


def draw_subset_masks(available: Any, seed: Any, probabilities: Sequence[float] | None = None
                      ) -> Any:
    """One subset mask per sample. A sample with no allowed subset (no modality available, or
    zero probability on all of its subsets) fails with InvalidArgumentError rather than
    training on an empty input.

    Args:
        available: [B, 4], the modalities each subject has.
        seed: a keras SeedGenerator or an int.
        probabilities: of `subset_weights`.

    Returns:
        float32 [B, 4].
    """
    weights = subset_weights(available, probabilities)                    # [B, 15]
    tf.debugging.assert_greater(
        tf.reduce_sum(weights, axis=-1), 0.0,
        message="A training sample has no drawable modality subset: it has no available "
                "modality, or the subset probabilities give all of its subsets zero weight.")
    logits = tf.math.log(weights)                                          # -inf where 0
    index = keras.random.categorical(logits, 1, seed=seed)[:, 0]          # [B]
    return tf.gather(tf.constant(subset_matrix()), index)                  # [B, 4]


def all_present(batch_size: Any) -> Any:
    """The mask of a batch with every modality.

    Args:
        batch_size: B.

    Returns:
        float32 [B, 4] of ones.
    """
    return tf.ones(tf.stack([batch_size, NUM_MODALITIES]), tf.float32)


