"""Fusion of the per-modality representations at one scale (docs/explanation/design.md, The networks).

U-HVED: each modality m gives a Gaussian N(mean_m, exp(logvar_m)) per latent element; the
posterior of a subset is their product with the N(0, I) prior (`hved_tf.gaussian`, eq. 4).

U-HeMIS: mean and population variance of the features over the present modalities.

Tensors carry the modality on axis 1: [B, M, *spatial, C]; masks are [B, M] (1 = present), so
every sample of a batch may have its own subset. Masked-out modalities enter only through a
multiplication by 0 (and a `where` for HeMIS), so their values never matter.
All fusion arithmetic is float32, whatever the layer's compute dtype.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from hved_tf.gaussian import (LOGVAR_CLIP, Tensor, expand_mask, product_of_gaussians,
                              reparameterise)
from hved_tf.models.blocks import register

Z_MODES = ("sample", "mean")


def split_moments(features: Tensor, clip: float = LOGVAR_CLIP) -> tuple[Tensor, Tensor]:
    """An encoder's Gaussian moments from its features.

    Args:
        features: [..., 2C].
        clip: the log-variance's bound.

    Returns:
        (mean [..., C], logvar clipped to ±clip [..., C]).
    """
    # tf.split, not slicing: the gradient of a slice (StridedSliceGrad) pads a full-size zero
    # tensor, measured at 0.8 s of a 112³ U-HVED training step; split's gradient is a concat.
    mean, logvar = tf.split(features, 2, axis=-1)
    return mean, tf.clip_by_value(logvar, -clip, clip)


def hemis_moments(features: Tensor, mask: Tensor) -> Tensor:
    """HeMIS fusion: mean and population variance over the present modalities.

    Args:
        features: [B, M, *spatial, C].
        mask: [B, M], at least one modality per sample.

    Returns:
        float32 [B, *spatial, 2C]: mean and variance concatenated on channels.
    """
    f = tf.cast(features, tf.float32)
    m = expand_mask(mask, len(f.shape))                               # [B, M, 1.., 1]
    present = m > 0
    count = tf.reduce_sum(m, axis=1)                                   # [B, 1.., 1]
    # `where`, not a product, so that non-finite values of absent modalities cannot leak in.
    f = tf.where(present, f, 0.0)
    mean = tf.reduce_sum(f, axis=1) / count                            # [B, ..., C]
    dev = tf.where(present, f - tf.expand_dims(mean, 1), 0.0)
    var = tf.reduce_sum(tf.square(dev), axis=1) / count                # [B, ..., C]
    return tf.concat([mean, var], axis=-1)


def sample_gaussian(mean: Tensor, logvar: Tensor, seed: Any) -> Tensor:
    """A reparameterised draw with noise from a Keras seed generator.

    Args:
        mean: the posterior's mean.
        logvar: its log-variance.
        seed: a keras SeedGenerator (or an int).

    Returns:
        float32, mean's shape.
    """
    return reparameterise(mean, logvar, keras.random.normal(tf.shape(mean), dtype="float32",
                                                            seed=seed))


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

    def call(self, mean: Tensor, logvar: Tensor, mask: Tensor,
             mode: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The fused posterior of one scale and its z.

        Args:
            mean: [B, M, *spatial, C] per modality.
            logvar: the same, clipped.
            mask: [B, M].
            mode: "sample" or "mean" (None: the layer's).

        Returns:
            (z, post_mean, post_logvar), each float32 [B, *spatial, C].
        """
        mode = mode or self.mode
        if mode not in Z_MODES:
            raise ValueError(f"z mode must be one of {Z_MODES}, got {mode!r}.")
        post_mean, post_logvar = product_of_gaussians(mean, logvar, mask)
        z = self.sample(post_mean, post_logvar) if mode == "sample" else post_mean
        return z, post_mean, post_logvar

    def sample(self, post_mean: Tensor, post_logvar: Tensor) -> Tensor:
        """Another draw from the same posterior.

        Args:
            post_mean: its mean.
            post_logvar: its log-variance.

        Returns:
            z, from the layer's own seed generator.
        """
        return sample_gaussian(post_mean, post_logvar, self.seed_generator)

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with `mode` and `seed`.
        """
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}


@register
class MomentsFusion(keras.layers.Layer):
    """HeMIS fusion: [B, M, *spatial, C] features and [B, M] mask -> [B, *spatial, 2C]."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")    # fusion stays float32 under mixed precision
        super().__init__(**kwargs)

    def call(self, features: Tensor, mask: Tensor) -> Tensor:
        """`hemis_moments` of the features.

        Args:
            features: [B, M, *spatial, C].
            mask: [B, M].

        Returns:
            float32 [B, *spatial, 2C].
        """
        return hemis_moments(features, mask)
