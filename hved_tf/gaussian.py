"""Diagonal-Gaussian numerics of U-HVED, the one home of each formula (docs/explanation/design.md).

The floor of the package: TensorFlow only, no Keras, nothing of hved_tf. Both the fusion
layers (`hved_tf.models.fusion`) and the KL terms of the loss (`hved_tf.losses`) build on it.

Product of Gaussians (the paper's eq. 4): each modality m gives N(mean_m, exp(logvar_m)) per
latent element; the posterior of a set of modalities is their product with the N(0, I) prior,
with the release's epsilons:

    P_m    = 1 / (exp(logvar_m) + 1e-7)                       (`precisions`)
    T      = 1 + sum_m mask_m * P_m                           (1: the prior's precision)
    mean   = sum_m mask_m * P_m * mean_m / T                  (`fuse`, `fuse_subsets`: 1/T, mean)
    var    = 1 / T + 1e-7,   logvar = log(var)                (`posterior_variance`)

`fuse` takes one mask per sample; `fuse_subsets` the same sums for a fixed list of subsets at
once (all 15 in the "original" KL). `product_of_gaussians` / `product_of_gaussians_subsets`
are the mean/logvar forms of the two.

KL between diagonal Gaussians, with the release's 1e-7 in the second variance's denominator:

    KL(N1 || N2) = 1/2 (log var2 - log var1 - 1 + ratio),                (`kl_from_terms`)
    ratio        = (var1 + (mean1 - mean2)^2) / (var2 + 1e-7)  (`kl_ratio`, `kl_inverse`)

`kl_divergence` puts the two together, elementwise or averaged over the last axis term by term
(`reduce_mean=True`: the form the "original" KL evaluates for 15 subsets at once without
materialising each elementwise KL; its analytic gradient reuses `kl_ratio`'s value).

Sampling: `reparameterise(mean, logvar, noise)` = mean + exp(logvar / 2) * noise; the noise
comes from a Keras seed generator in training and from stateless draws at inference.

Everything is float32.
"""
from __future__ import annotations

from typing import Any, TypeAlias

import tensorflow as tf

POE_EPSILON = 1e-7       # added to each expert's variance, and to the posterior's
KL_EPSILON = 1e-7        # added to the second variance in the KL's denominator
LOGVAR_CLIP = 50.0       # the encoders' log-variances are clipped to ±this


Tensor: TypeAlias = Any      # a tf.Tensor (TensorFlow ships no type stubs)


def precisions(logvar: Tensor) -> Tensor:
    """Each expert's precision P = 1 / (exp(logvar) + 1e-7).

    Args:
        logvar: log-variances, any shape.

    Returns:
        float32 precisions, the same shape.
    """
    return 1.0 / (tf.exp(tf.cast(logvar, tf.float32)) + POE_EPSILON)


def expand_mask(mask: Tensor, rank: int) -> Tensor:
    """A per-sample modality mask shaped to broadcast against the experts' tensors.

    Args:
        mask: [B, M], 1 where a modality is present.
        rank: the rank of the tensors it will multiply.

    Returns:
        float32 [B, M, 1, ..., 1] with `rank` dimensions.
    """
    mask = tf.cast(mask, tf.float32)
    return tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones([rank - 2], tf.int32)], 0))


def fuse(precision: Tensor, weighted: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The product of the masked experts and the prior, over axis 1.

    Args:
        precision: [B, M, ...] the experts' precisions P.
        weighted: [B, M, ...] P * mean.
        mask: broadcastable to them, e.g. [B, M, 1, ..., 1].

    Returns:
        (1 / T, mean), each [B, ...].
    """
    inverse = 1.0 / (1.0 + tf.reduce_sum(mask * precision, axis=1))
    return inverse, tf.reduce_sum(mask * weighted, axis=1) * inverse


def fuse_subsets(precision: Tensor, weighted: Tensor,
                 subsets: Tensor) -> tuple[Tensor, Tensor]:
    """`fuse` for each of several fixed subsets at once.

    Args:
        precision: [B, M, N] the experts' precisions.
        weighted: [B, M, N] P * mean.
        subsets: [S, M] of 0/1.

    Returns:
        (1 / T, mean), each [B, S, N].
    """
    subsets = tf.cast(subsets, tf.float32)
    inverse = 1.0 / (1.0 + tf.einsum("sm,bmn->bsn", subsets, precision))
    return inverse, tf.einsum("sm,bmn->bsn", subsets, weighted) * inverse


def posterior_variance(inverse_total: Tensor) -> Tensor:
    """The posterior's variance var = 1 / T + 1e-7.

    Args:
        inverse_total: 1 / T of a product with total precision T.

    Returns:
        The variance, the same shape.
    """
    return inverse_total + POE_EPSILON


def product_of_gaussians(mean: Tensor, logvar: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Product of the masked experts' Gaussians and the N(0, I) prior.

    Args:
        mean: [B, M, *spatial, C] the experts' means.
        logvar: [B, M, *spatial, C] their log-variances.
        mask: [B, M], 1 where a modality is present.

    Returns:
        (mean, logvar) of the posterior, each [B, *spatial, C].
    """
    mean = tf.cast(mean, tf.float32)
    precision = precisions(logvar)
    inverse, post_mean = fuse(precision, precision * mean, expand_mask(mask, len(mean.shape)))
    return post_mean, tf.math.log(posterior_variance(inverse))


def product_of_gaussians_subsets(mean: Tensor, logvar: Tensor,
                                 subsets: Tensor) -> tuple[Tensor, Tensor]:
    """Products for several fixed subsets; entry s equals `product_of_gaussians` with the
    mask subsets[s].

    Args:
        mean: [B, M, *spatial, C] the experts' means.
        logvar: [B, M, *spatial, C] their log-variances.
        subsets: [S, M] of 0/1.

    Returns:
        (mean, logvar), each [B, S, *spatial, C].
    """
    mean = tf.cast(mean, tf.float32)
    shape = tf.shape(mean)
    flat = tf.stack([shape[0], shape[1], -1])
    precision = tf.reshape(precisions(logvar), flat)
    inverse, post_mean = fuse_subsets(precision, tf.reshape(mean, flat) * precision, subsets)
    out_shape = tf.concat([shape[:1], tf.shape(subsets)[:1], shape[2:]], 0)
    return (tf.reshape(post_mean, out_shape),
            tf.reshape(tf.math.log(posterior_variance(inverse)), out_shape))


def kl_ratio(var1: Tensor, difference: Tensor, inverse: Tensor) -> Tensor:
    """The KL's ratio term (var1 + difference^2) * inverse.

    Args:
        var1: the first variance.
        difference: mean1 - mean2.
        inverse: 1 / (var2 + 1e-7) (`kl_inverse`; given, so that a caller that needs it too
            computes it once).

    Returns:
        The ratio, broadcast shape.
    """
    return (var1 + tf.square(difference)) * inverse


def kl_inverse(var2: Tensor, epsilon: float = KL_EPSILON) -> Tensor:
    """The release's regularised inverse of the second variance.

    Args:
        var2: the second variance.
        epsilon: added to it (the release's 1e-7).

    Returns:
        1 / (var2 + epsilon).
    """
    return 1.0 / (var2 + epsilon)


def kl_from_terms(log_var1: Tensor, log_var2: Tensor, ratio: Tensor) -> Tensor:
    """The KL from its terms (or from their means).

    Args:
        log_var1: log of the first variance.
        log_var2: log of the second variance.
        ratio: `kl_ratio`.

    Returns:
        1/2 (log var2 - log var1 - 1 + ratio).
    """
    return 0.5 * (log_var2 - log_var1 - 1.0 + ratio)


def kl_divergence(mean1: Tensor, var1: Tensor, log_var1: Tensor, mean2: Tensor, var2: Tensor,
                  log_var2: Tensor, epsilon: float = KL_EPSILON,
                  reduce_mean: bool = False) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) from means, variances and log-variances.

    Args:
        mean1: the first mean.
        var1: the first variance.
        log_var1: its log.
        mean2: the second mean.
        var2: the second variance.
        log_var2: its log.
        epsilon: added to var2 in the ratio's denominator (the release's 1e-7).
        reduce_mean: average each term over the last axis first.

    Returns:
        The KL in nats, elementwise (or with the last axis averaged).
    """
    terms = (log_var1, log_var2, kl_ratio(var1, mean1 - mean2, kl_inverse(var2, epsilon)))
    if reduce_mean:
        terms = tuple(_mean_last(t) for t in terms)
    return kl_from_terms(*terms)


def _mean_last(t):
    t = tf.convert_to_tensor(t, tf.float32)
    return t if t.shape.rank == 0 else tf.reduce_mean(t, axis=-1)


def kl_normal(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor,
              epsilon: float = KL_EPSILON) -> Tensor:
    """Elementwise KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)).

    Args:
        mean1: the first mean.
        logvar1: the first log-variance.
        mean2: the second mean.
        logvar2: the second log-variance.
        epsilon: the release's regulariser (0: the exact KL).

    Returns:
        float32 KL in nats, the broadcast shape.
    """
    mean1, logvar1, mean2, logvar2 = (tf.cast(t, tf.float32)
                                      for t in (mean1, logvar1, mean2, logvar2))
    return kl_divergence(mean1, tf.exp(logvar1), logvar1, mean2, var2=tf.exp(logvar2),
                         log_var2=logvar2, epsilon=epsilon)


def reparameterise(mean: Tensor, logvar: Tensor, noise: Tensor) -> Tensor:
    """A draw of N(mean, exp(logvar)).

    Args:
        mean: the mean.
        logvar: the log-variance.
        noise: N(0, I) of mean's shape.

    Returns:
        mean + exp(logvar / 2) * noise.
    """
    return draw_with_scale(mean, standard_deviation(logvar), noise)


def standard_deviation(logvar: Tensor) -> Tensor:
    """exp(logvar / 2): computed once, it serves every draw of `draw_with_scale`.

    Args:
        logvar: the log-variance.

    Returns:
        The standard deviation.
    """
    return tf.exp(0.5 * logvar)


def draw_with_scale(mean: Tensor, scale: Tensor, noise: Tensor) -> Tensor:
    """A draw given the standard deviation (`reparameterise` with scale = exp(logvar / 2)).

    Args:
        mean: the mean.
        scale: the standard deviation.
        noise: N(0, I) of mean's shape.

    Returns:
        mean + scale * noise, in mean's dtype.
    """
    return mean + scale * tf.cast(noise, mean.dtype)
