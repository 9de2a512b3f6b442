"""Fusion of the per-modality representations at one scale (DESIGN.md §3).

U-HVED: each modality m gives a Gaussian N(mean_m, exp(logvar_m)) per latent element; the
posterior of a subset is their product with the N(0, I) prior:

    precision_m = 1 / (exp(logvar_m) + 1e-7)          for each present modality
    T           = 1 + sum_m mask_m * precision_m      (1 = the prior's precision)
    mean        = sum_m mask_m * precision_m * mean_m / T
    logvar      = log(1 / T + 1e-7)

U-HeMIS: mean and population variance of the features over the present modalities.

Tensors carry the modality on axis 1: [B, M, *spatial, C]; masks are [B, M] (1 = present), so
every sample of a batch may have its own subset. Masked-out modalities enter only through a
multiplication by 0 (and a `where` for HeMIS), so their values never matter.
All fusion arithmetic is float32, whatever the layer's compute dtype.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from hved_tf.models.blocks import register

LOGVAR_CLIP = 50.0
POE_EPSILON = 1e-7
Z_MODES = ("sample", "mean")


def _expand_mask(mask, rank):
    """[B, M] -> [B, M, 1, ..., 1] with `rank` dims in all."""
    mask = tf.cast(mask, tf.float32)
    return tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones([rank - 2], tf.int32)], 0))


def product_of_gaussians(mean, logvar, mask):
    """Product of the masked experts' Gaussians and the N(0, I) prior.

    mean, logvar: [B, M, *spatial, C] (float); mask: [B, M].
    Returns (mean, logvar), each [B, *spatial, C], float32.
    """
    mean = tf.cast(mean, tf.float32)
    logvar = tf.cast(logvar, tf.float32)
    m = _expand_mask(mask, len(mean.shape))                           # [B, M, 1.., 1]
    precision = m / (tf.exp(logvar) + POE_EPSILON)                     # [B, M, ..., C]
    total = 1.0 + tf.reduce_sum(precision, axis=1)                     # [B, ..., C]
    post_mean = tf.reduce_sum(precision * mean, axis=1) / total        # [B, ..., C]
    post_logvar = tf.math.log(1.0 / total + POE_EPSILON)               # [B, ..., C]
    return post_mean, post_logvar


def product_of_gaussians_subsets(mean, logvar, subsets):
    """Products of Gaussians for several fixed subsets at once.

    mean, logvar: [B, M, *spatial, C]; subsets: [S, M] 0/1 (e.g. all 15 subsets).
    Returns (mean, logvar), each [B, S, *spatial, C] float32: entry s equals
    product_of_gaussians(mean, logvar, subsets[s] for every sample).
    """
    mean = tf.cast(mean, tf.float32)
    logvar = tf.cast(logvar, tf.float32)
    subsets = tf.cast(subsets, tf.float32)
    shape = tf.shape(mean)
    flat = tf.stack([shape[0], shape[1], -1])
    precision = tf.reshape(1.0 / (tf.exp(logvar) + POE_EPSILON), flat)       # [B, M, N]
    weighted = tf.reshape(mean, flat) * precision                            # [B, M, N]
    total = 1.0 + tf.einsum("sm,bmn->bsn", subsets, precision)              # [B, S, N]
    post_mean = tf.einsum("sm,bmn->bsn", subsets, weighted) / total          # [B, S, N]
    post_logvar = tf.math.log(1.0 / total + POE_EPSILON)                     # [B, S, N]
    out_shape = tf.concat([shape[:1], tf.shape(subsets)[:1], shape[2:]], 0)
    return tf.reshape(post_mean, out_shape), tf.reshape(post_logvar, out_shape)


def split_moments(features, clip=LOGVAR_CLIP):
    """Encoder features [..., 2C] -> (mean [..., C], logvar clipped to ±clip [..., C])."""
    # tf.split, not slicing: the gradient of a slice (StridedSliceGrad) pads a full-size zero
    # tensor, measured at 0.8 s of a 112³ U-HVED training step; split's gradient is a concat.
    mean, logvar = tf.split(features, 2, axis=-1)
    return mean, tf.clip_by_value(logvar, -clip, clip)


def hemis_moments(features, mask):
    """Mean and population variance over the present modalities, concatenated on channels.

    features: [B, M, *spatial, C]; mask: [B, M] with at least one modality per sample.
    Returns [B, *spatial, 2C] float32.
    """
    f = tf.cast(features, tf.float32)
    m = _expand_mask(mask, len(f.shape))                               # [B, M, 1.., 1]
    present = m > 0
    count = tf.reduce_sum(m, axis=1)                                   # [B, 1.., 1]
    # `where`, not a product, so that non-finite values of absent modalities cannot leak in.
    f = tf.where(present, f, 0.0)
    mean = tf.reduce_sum(f, axis=1) / count                            # [B, ..., C]
    dev = tf.where(present, f - tf.expand_dims(mean, 1), 0.0)
    var = tf.reduce_sum(tf.square(dev), axis=1) / count                # [B, ..., C]
    return tf.concat([mean, var], axis=-1)


def sample_gaussian(mean, logvar, seed):
    """Reparameterised draw mean + exp(logvar / 2) * eps, eps ~ N(0, I) (float32)."""
    eps = keras.random.normal(tf.shape(mean), dtype="float32", seed=seed)
    return mean + tf.exp(0.5 * logvar) * eps


@register
class GaussianFusion(keras.layers.Layer):
    """Product-of-Gaussians fusion of one scale, with a named mode.

    call(mean, logvar, mask, mode=None): per-modality mean and clipped logvar [B, M, *spatial, C]
    and mask [B, M] -> (z, post_mean, post_logvar), each [B, *spatial, C] float32. z is a
    reparameterised draw (mode "sample", from the layer's own seed generator) or the posterior
    mean (mode "mean"). `sample(post_mean, post_logvar)` draws again from the same posterior.
    """

    def __init__(self, mode="sample", seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")    # fusion stays float32 under mixed precision
        super().__init__(**kwargs)
        if mode not in Z_MODES:
            raise ValueError(f"GaussianFusion mode must be one of {Z_MODES}, got {mode!r}.")
        self.mode = mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def call(self, mean, logvar, mask, mode=None):
        mode = mode or self.mode
        if mode not in Z_MODES:
            raise ValueError(f"z mode must be one of {Z_MODES}, got {mode!r}.")
        post_mean, post_logvar = product_of_gaussians(mean, logvar, mask)
        z = self.sample(post_mean, post_logvar) if mode == "sample" else post_mean
        return z, post_mean, post_logvar

    def sample(self, post_mean, post_logvar):
        return sample_gaussian(post_mean, post_logvar, self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}


@register
class MomentsFusion(keras.layers.Layer):
    """HeMIS fusion: [B, M, *spatial, C] features and [B, M] mask -> [B, *spatial, 2C]."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")    # fusion stays float32 under mixed precision
        super().__init__(**kwargs)

    def call(self, features, mask):
        return hemis_moments(features, mask)
