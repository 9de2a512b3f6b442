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

import tensorflow as tf

POE_EPSILON = 1e-7       # added to each expert's variance, and to the posterior's
KL_EPSILON = 1e-7        # added to the second variance in the KL's denominator
LOGVAR_CLIP = 50.0       # the encoders' log-variances are clipped to ±this


def precisions(logvar):
    """P = 1 / (exp(logvar) + 1e-7), float32."""
    return 1.0 / (tf.exp(tf.cast(logvar, tf.float32)) + POE_EPSILON)


def expand_mask(mask, rank):
    """[B, M] -> [B, M, 1, ..., 1] float32 with `rank` dimensions in all."""
    mask = tf.cast(mask, tf.float32)
    return tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones([rank - 2], tf.int32)], 0))


def fuse(precision, weighted, mask):
    """(1 / T, mean) of the product over axis 1: precision, weighted (= P * mean) [B, M, ...],
    `mask` broadcastable to them (e.g. [B, M, 1, ..., 1]). Returns [B, ...] each."""
    inverse = 1.0 / (1.0 + tf.reduce_sum(mask * precision, axis=1))
    return inverse, tf.reduce_sum(mask * weighted, axis=1) * inverse


def fuse_subsets(precision, weighted, subsets):
    """(1 / T, mean) for each of `subsets` [S, M] (0/1) at once: precision, weighted
    [B, M, N] -> [B, S, N] each."""
    subsets = tf.cast(subsets, tf.float32)
    inverse = 1.0 / (1.0 + tf.einsum("sm,bmn->bsn", subsets, precision))
    return inverse, tf.einsum("sm,bmn->bsn", subsets, weighted) * inverse


def posterior_variance(inverse_total):
    """var = 1 / T + 1e-7 of a product with total precision T (given as 1 / T)."""
    return inverse_total + POE_EPSILON


def product_of_gaussians(mean, logvar, mask):
    """Product of the masked experts' Gaussians and the N(0, I) prior.

    mean, logvar: [B, M, *spatial, C]; mask: [B, M]. Returns (mean, logvar) [B, *spatial, C].
    """
    mean = tf.cast(mean, tf.float32)
    precision = precisions(logvar)
    inverse, post_mean = fuse(precision, precision * mean, expand_mask(mask, len(mean.shape)))
    return post_mean, tf.math.log(posterior_variance(inverse))


def product_of_gaussians_subsets(mean, logvar, subsets):
    """Products for several fixed subsets: mean, logvar [B, M, *spatial, C], subsets [S, M] ->
    (mean, logvar) [B, S, *spatial, C]; entry s equals `product_of_gaussians` with subsets[s]."""
    mean = tf.cast(mean, tf.float32)
    shape = tf.shape(mean)
    flat = tf.stack([shape[0], shape[1], -1])
    precision = tf.reshape(precisions(logvar), flat)
    inverse, post_mean = fuse_subsets(precision, tf.reshape(mean, flat) * precision, subsets)
    out_shape = tf.concat([shape[:1], tf.shape(subsets)[:1], shape[2:]], 0)
    return (tf.reshape(post_mean, out_shape),
            tf.reshape(tf.math.log(posterior_variance(inverse)), out_shape))


def kl_ratio(var1, difference, inverse):
    """(var1 + difference^2) * inverse, the KL's ratio term: difference = mean1 - mean2,
    inverse = 1 / (var2 + 1e-7) (`kl_inverse`; given, so that a caller that needs it too
    computes it once)."""
    return (var1 + tf.square(difference)) * inverse


def kl_inverse(var2, epsilon=KL_EPSILON):
    """1 / (var2 + epsilon), the release's regularised inverse of the second variance."""
    return 1.0 / (var2 + epsilon)


def kl_from_terms(log_var1, log_var2, ratio):
    """1/2 (log var2 - log var1 - 1 + ratio): the KL from its terms (or their means)."""
    return 0.5 * (log_var2 - log_var1 - 1.0 + ratio)


def kl_divergence(mean1, var1, log_var1, mean2, var2, log_var2, epsilon=KL_EPSILON,
                  reduce_mean=False):
    """KL(N(mean1, var1) || N(mean2, var2)) from means, variances and log-variances (see the
    module docstring); `reduce_mean` averages each term over the last axis first."""
    terms = (log_var1, log_var2, kl_ratio(var1, mean1 - mean2, kl_inverse(var2, epsilon)))
    if reduce_mean:
        terms = tuple(_mean_last(t) for t in terms)
    return kl_from_terms(*terms)


def _mean_last(t):
    t = tf.convert_to_tensor(t, tf.float32)
    return t if t.shape.rank == 0 else tf.reduce_mean(t, axis=-1)


def kl_normal(mean1, logvar1, mean2, logvar2, epsilon=KL_EPSILON):
    """Elementwise KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats (epsilon 0: exact)."""
    mean1, logvar1, mean2, logvar2 = (tf.cast(t, tf.float32)
                                      for t in (mean1, logvar1, mean2, logvar2))
    return kl_divergence(mean1, tf.exp(logvar1), logvar1, mean2, var2=tf.exp(logvar2),
                         log_var2=logvar2, epsilon=epsilon)


def reparameterise(mean, logvar, noise):
    """A draw mean + exp(logvar / 2) * noise, noise ~ N(0, I) of mean's shape."""
    return draw_with_scale(mean, standard_deviation(logvar), noise)


def standard_deviation(logvar):
    """exp(logvar / 2): computed once, it serves every draw of `draw_with_scale`."""
    return tf.exp(0.5 * logvar)


def draw_with_scale(mean, scale, noise):
    """mean + scale * noise (the same value as `reparameterise` given scale = exp(logvar / 2))."""
    return mean + scale * tf.cast(noise, mean.dtype)
