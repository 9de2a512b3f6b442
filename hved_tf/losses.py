"""Losses of the original release (docs/explanation/design.md, Training numerics), as pure TF
functions, float32 whatever the model's compute dtype. No I/O.

- ``dice_loss``: the released graph's Dice: softmax p, one-hot g, per sample and class over all
  voxels 2·Σpg / (Σp² + Σg + 1e-5) (an absent class scores 0); 1 - mean over the 4 classes
  (background included); mean over the batch. ``numerator_epsilon=1e-5``: NiftyNet 0.5.0's.
- ``reconstruction_loss``: MSE over the modalities a subject has (all four when none is missing).
- ``kl_loss``: "original" (released code) or "paper" variant, averaged over the latent levels;
  the "original" one runs as one XLA-compiled function returning its value and analytic
  gradient (it compiles elementwise code only, see `_kl_original_value_and_grad`;
  ``fused=False``: plain autodiff). ``kl_normal`` is `hved_tf.gaussian`'s, re-exported.
- ``weight_decay``: mean over conv kernels of 1e-5 · Σw² / 2 (the release's reduce_mean).
- ``total_loss``: Dice + CE + 0.1·KL + 0.1·L2 + decay, weights configurable (`LossWeights`).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from hved_tf import gaussian
from hved_tf.gaussian import KL_EPSILON, Tensor, kl_normal, product_of_gaussians
from hved_tf.modalities import NUM_CLASSES, subset_matrix
from hved_tf.settings import setting

DICE_EPSILON = 1e-5
KL_VARIANTS = ("original", "paper")
WEIGHT_DECAY = 1e-5


def _labels_to_int(labels, logits):
    """Accepts [B, X, Y, Z, 1] or [B, X, Y, Z] integer labels; returns [B, X, Y, Z] int32."""
    labels = tf.convert_to_tensor(labels)
    rank, lrank = len(labels.shape), len(logits.shape)
    if rank == lrank and labels.shape[-1] == 1:
        labels = labels[..., 0]
    elif rank != lrank - 1:
        raise ValueError(
            f"labels must have shape [B, *spatial] or [B, *spatial, 1] to match logits of shape "
            f"{logits.shape}; got shape {labels.shape}.")
    if labels.dtype.is_floating:
        labels = tf.round(labels)
    return tf.cast(labels, tf.int32)


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean softmax cross-entropy over voxels and batch.

    Args:
        logits: [B, *spatial, K].
        labels: [B, *spatial] or [B, *spatial, 1] class indices.

    Returns:
        A float32 scalar.
    """
    logits = tf.cast(logits, tf.float32)
    labels = _labels_to_int(labels, logits)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)  # [B, ...]
    return tf.reduce_mean(ce)


def dice_loss(logits: Tensor, labels: Tensor, numerator_epsilon: float = 0.0,
              denominator_epsilon: float = DICE_EPSILON) -> Tensor:
    """1 - the mean over classes of the soft Dice per sample, averaged over the batch.

    Args:
        logits: [B, *spatial, K].
        labels: [B, *spatial] or [B, *spatial, 1] class indices.
        numerator_epsilon: added to 2·Σpg (0: the released graph; 1e-5: NiftyNet 0.5.0).
        denominator_epsilon: added to Σp² + Σg.

    Returns:
        A float32 scalar.
    """
    logits = tf.cast(logits, tf.float32)
    labels = _labels_to_int(labels, logits)
    num_classes = logits.shape[-1]
    axes = list(range(1, len(logits.shape) - 1))
    p = tf.nn.softmax(logits, axis=-1)                                    # [B, ..., K]
    g = tf.one_hot(labels, num_classes, dtype=tf.float32)                 # [B, ..., K]
    numerator = 2.0 * tf.reduce_sum(p * g, axis=axes) + numerator_epsilon  # [B, K]
    denominator = (tf.reduce_sum(tf.square(p), axis=axes)
                   + tf.reduce_sum(g, axis=axes) + denominator_epsilon)  # [B, K]
    dice = numerator / denominator                                        # [B, K]
    return tf.reduce_mean(1.0 - tf.reduce_mean(dice, axis=-1))


def segmentation_terms(logits: Tensor, labels: Tensor,
                       numerator_epsilon: float = 0.0) -> dict[str, Tensor]:
    """The segmentation terms the models report.

    Args:
        logits: [B, *spatial, K].
        labels: [B, *spatial(, 1)] class indices.
        numerator_epsilon: of `dice_loss`.

    Returns:
        {"seg_ce": `cross_entropy`, "seg_dice": `dice_loss`}.
    """
    return {"seg_ce": cross_entropy(logits, labels),
            "seg_dice": dice_loss(logits, labels, numerator_epsilon=numerator_epsilon)}


def segmentation_loss(logits: Tensor, labels: Tensor, numerator_epsilon: float = 0.0) -> Tensor:
    """The release's segmentation loss.

    Args:
        logits: [B, *spatial, K].
        labels: [B, *spatial(, 1)] class indices.
        numerator_epsilon: of `dice_loss`.

    Returns:
        Cross-entropy + Dice loss, a scalar.
    """
    terms = segmentation_terms(logits, labels, numerator_epsilon)
    return terms["seg_ce"] + terms["seg_dice"]


def reconstruction_loss(recon: Tensor, image: Tensor, available: Tensor | None = None) -> Tensor:
    """Mean squared error over the voxels of the available modalities.

    Args:
        recon: [B, *spatial, M] the decoded images.
        image: [B, *spatial, M] the inputs.
        available: [B, M], 1 where the subject has the modality (None: all).

    Returns:
        A float32 scalar.
    """
    recon = tf.cast(recon, tf.float32)
    image = tf.cast(image, tf.float32)
    sq = tf.square(recon - image)                                         # [B, ..., M]
    if available is None:
        return tf.reduce_mean(sq)
    a = tf.cast(available, tf.float32)
    a = tf.reshape(a, tf.concat([tf.shape(a)[:1], tf.ones([len(sq.shape) - 2], tf.int32),
                                 tf.shape(a)[1:]], 0))                    # [B, 1.., M]
    voxels = tf.cast(tf.reduce_prod(tf.shape(sq)[1:-1]), tf.float32)
    total = tf.reduce_sum(tf.where(a > 0, sq, 0.0))
    return total / tf.maximum(tf.reduce_sum(a) * voxels, 1.0)


def _mean_per_sample(x):  # [B, ...] -> [B]
    return tf.reduce_mean(tf.reshape(x, tf.stack([tf.shape(x)[0], -1])), axis=-1)


def kl_level(mean: Tensor, logvar: Tensor, mask: Tensor, available: Tensor | None = None,
             variant: str = "original", fused: bool = True) -> Tensor:
    """KL term of one latent level.

    Args:
        mean: [B, M, *spatial, C] the per-modality posteriors' means.
        logvar: [B, M, *spatial, C] their log-variances.
        mask: [B, M] the drawn subset.
        available: [B, M] the modalities the subject has (None: all).
        variant: "paper" or "original" (below).
        fused: the "original" variant with its analytic gradient in one XLA-compiled function
            (same values, a fraction of the memory and time); False: plain autodiff.

    Returns:
        [B] float32.

    "paper":    KL(q_mask || N(0, I)).
    "original": mean over s≠… of KL(q_mask || q_s) with weight 1/(n_s - 1), plus the mean over s
                of KL(q_s || N(0, I)), s ranging over the non-empty subsets of the available
                modalities (n_s of them: 15 when all four are there, giving the release's 1/14
                and 1/15). The sum over s includes s = mask itself, as the release's does.
    Each KL is the mean over a sample's elements.
    """
    if variant not in KL_VARIANTS:
        raise ValueError(f"Unknown KL variant {variant!r}: expected one of {KL_VARIANTS}.")
    post_mean, post_logvar = product_of_gaussians(mean, logvar, mask)     # [B, ..., C]
    if variant == "paper":
        return _mean_per_sample(kl_normal(post_mean, post_logvar, 0.0, 0.0))
    batch = tf.shape(mean)[0]
    if available is None:
        available = tf.ones(tf.stack([batch, mean.shape[1]]), tf.float32)
    available = tf.cast(available, tf.float32)
    flat = tf.stack([batch, tf.shape(mean)[1], -1])
    mean = tf.reshape(tf.cast(mean, tf.float32), flat)                     # [B, M, N]
    logvar = tf.reshape(tf.cast(logvar, tf.float32), flat)                 # [B, M, N]
    mask = tf.cast(mask, tf.float32)
    if fused:
        return _kl_original_analytic(mean, logvar, mask, available)
    return _kl_original(mean, logvar, mask, available)


def _subset_weights(available):
    """Weights [B, 15] of the inter-subset and prior terms for each sample's subsets.

    s ranges over the non-empty subsets of the available modalities (n of them): the inter terms
    weigh 1/(n - 1) (none when n = 1: there is no other subset), the prior terms 1/n.
    """
    S = tf.constant(subset_matrix())                                       # [15, M]
    valid = tf.cast(tf.reduce_all(S[None] <= available[:, None], -1), tf.float32)   # [B, 15]
    n = tf.reduce_sum(valid, axis=-1, keepdims=True)                       # [B, 1]
    return valid / tf.maximum(n - 1.0, 1.0), valid / tf.maximum(n, 1.0)


def _kl_original_part(mean, logvar, mask, subsets, w_inter, w_prior):
    """Σ_s w_inter·KL(q_pi || q_s) + w_prior·KL(q_s || N(0, I)) over `subsets` [S, M], [B].

    q_pi is the product for each sample's drawn subset, q_s those of `subsets`, all from
    `hved_tf.gaussian`; each KL is a mean over a sample's elements, averaged term by term
    (`kl_divergence(..., reduce_mean=True)`), so that no [B, S, N] KL is materialised.
    """
    precision = gaussian.precisions(logvar)                                # [B, M, N]
    weighted = precision * mean                                            # [B, M, N]
    r_pi, m_pi = gaussian.fuse(precision, weighted, mask[:, :, None])       # [B, N]
    v_pi = gaussian.posterior_variance(r_pi)
    r_s, m_s = gaussian.fuse_subsets(precision, weighted, subsets)         # [B, S, N]
    v_s = gaussian.posterior_variance(r_s)
    log_v_s = tf.math.log(v_s)
    inter = gaussian.kl_divergence(m_pi[:, None], v_pi[:, None], tf.math.log(v_pi)[:, None],
                                   m_s, var2=v_s, log_var2=log_v_s, reduce_mean=True)    # [B, S]
    prior = gaussian.kl_divergence(m_s, v_s, log_v_s, 0.0, var2=1.0, log_var2=0.0,
                                   reduce_mean=True)                       # [B, S]
    return tf.reduce_sum(w_inter * inter + w_prior * prior, axis=-1)       # [B]


def _kl_original(mean, logvar, mask, available):
    """The "original" KL of one level, [B], from flattened experts [B, M, N] (plain autodiff)."""
    w_inter, w_prior = _subset_weights(available)
    return _kl_original_part(mean, logvar, mask, tf.constant(subset_matrix()), w_inter=w_inter,
                             w_prior=w_prior)


# The original KL compares 15 subset posteriors elementwise at every level: plain TF writes a
# [B, 15, N] tensor per elementwise step (337 MB at level 1 of a 112^3 patch) and autodiff keeps
# them all (+5 GB, +1.4 s a step). Here one XLA-compiled function gives the value and its
# analytic gradient ([B, M, N] like the inputs, all that is kept): 0.49 s against 1.3 s at
# 112^3 level 1. Only this elementwise code is jitted (XLA makes Conv3D far slower on a CPU).
def _kl_original_value_and_grad(mean, logvar, mask, available):
    """The "original" KL [B] and its gradients w.r.t. mean and logvar [B, M, N].

    Per element, with weights a_s (inter) and b_s (prior) of `_subset_weights`, u_s = v_s + 1e-7,
    D_s = m_pi - m_s, q_s = (v_pi + D_s²) / u_s and c = 1 + 1e-7, the KL sums
        ½ a_s (log v_s - log v_pi - 1 + q_s) + ½ b_s (-log v_s - 1 + (v_s + m_s²) / c),
    whose partial derivatives are
        ∂/∂v_s  = ½ ((a_s - b_s) / v_s - a_s q_s / u_s + b_s / c)
        ∂/∂m_s  = -a_s D_s / u_s + b_s m_s / c
        ∂/∂v_pi = ½ Σ_s a_s (1 / u_s - 1 / v_pi),     ∂/∂m_pi = Σ_s a_s D_s / u_s,
    then through v = 1/T + 1e-7, m = W/T (T = 1 + Σ S·P, W = Σ S·P·mean) and
    P = 1 / (e^logvar + 1e-7). Checked against autodiff of `_kl_original` in the tests.
    """
    S = tf.constant(subset_matrix())                                       # [15, M]
    a, b = _subset_weights(available)                                      # [B, 15] each
    count = tf.cast(tf.shape(mean)[-1], tf.float32)
    c = 1.0 + KL_EPSILON
    e = tf.exp(logvar)                                                     # [B, M, N]
    precision = gaussian.precisions(logvar)                                # [B, M, N]
    weighted = precision * mean                                            # [B, M, N]
    msk = mask[:, :, None]                                                 # [B, M, 1]
    r_pi, m_pi = gaussian.fuse(precision, weighted, msk)                   # [B, N]
    v_pi = gaussian.posterior_variance(r_pi)                               # [B, N]
    r, m_s = gaussian.fuse_subsets(precision, weighted, S)                 # [B, 15, N]
    v_s = gaussian.posterior_variance(r)
    inv_u = gaussian.kl_inverse(v_s)                                       # [B, 15, N]
    d = m_pi[:, None] - m_s                                                # [B, 15, N]
    q = gaussian.kl_ratio(v_pi[:, None], d, inv_u)                         # [B, 15, N]
    log_v_s = tf.reduce_mean(tf.math.log(v_s), -1)                         # [B, 15]
    log_v_pi = tf.reduce_mean(tf.math.log(v_pi), axis=-1, keepdims=True)   # [B, 1]
    # The value from these intermediates, through the one KL formula (`hved_tf.gaussian`).
    inter = gaussian.kl_from_terms(log_v_pi, log_v_s, tf.reduce_mean(q, -1))         # [B, 15]
    prior = gaussian.kl_from_terms(log_v_s, 0.0, tf.reduce_mean(
        gaussian.kl_ratio(v_s, m_s, 1.0 / c), -1))                         # [B, 15]
    total = tf.reduce_sum(a * inter + b * prior, -1)                       # [B]
    a, b = a[:, :, None] / count, b[:, :, None] / count                    # d(mean)/d(element)
    d_v = 0.5 * ((a - b) / v_s - a * q * inv_u + b / c)                   # [B, 15, N]
    d_m = b * m_s / c - a * d * inv_u                                      # [B, 15, N]
    g_t = -(d_v * r + d_m * m_s) * r                                       # dL/dT_s
    g_p = tf.einsum("sm,bsn->bmn", S, g_t)                                 # [B, M, N]
    g_w = tf.einsum("sm,bsn->bmn", S, d_m * r)                             # [B, M, N]
    g_vpi = 0.5 * tf.reduce_sum(a * (inv_u - 1.0 / v_pi[:, None]), axis=1) # [B, N]
    g_mpi = tf.reduce_sum(a * d * inv_u, axis=1)                           # [B, N]
    g_t_pi = -(g_vpi * r_pi + g_mpi * m_pi) * r_pi                         # [B, N]
    g_p = g_p + msk * g_t_pi[:, None]
    g_w = g_w + msk * (g_mpi * r_pi)[:, None]
    g_mean = g_w * precision                                               # [B, M, N]
    g_logvar = -(g_p + g_w * mean) * precision * precision * e             # [B, M, N]
    return total, g_mean, g_logvar


@tf.function(jit_compile=True)
def _kl_original_value_and_grad_xla(mean, logvar, mask, available):
    return _kl_original_value_and_grad(mean, logvar, mask, available)


def _kl_original_analytic(mean, logvar, mask, available):
    @tf.custom_gradient
    def kl(mean, logvar):
        value, g_mean, g_logvar = _kl_original_value_and_grad_xla(mean, logvar, mask, available)

        def grad(upstream):
            up = upstream[:, None, None]                                   # [B, 1, 1]
            return up * g_mean, up * g_logvar

        return value, grad

    return kl(mean, logvar)


def kl_loss(means: list, logvars: list, mask: Tensor, available: Tensor | None = None,
            variant: str = "original") -> Tensor:
    """The KL loss: the mean over levels and batch of `kl_level`.

    Args:
        means: per level, [B, M, *spatial, C].
        logvars: per level, the same shapes.
        mask: [B, M] the drawn subset.
        available: [B, M] the modalities the subject has (None: all).
        variant: "original" or "paper".

    Returns:
        A float32 scalar.
    """
    terms = [kl_level(m, lv, mask, available, variant=variant) for m, lv in zip(means, logvars)]
    return tf.reduce_mean(tf.add_n(terms) / float(len(terms)))


def conv_kernels(model: Any) -> list:
    """The convolution kernels of a model (the variables the release regularised).

    Args:
        model: a Keras model.

    Returns:
        Its trainable variables whose path ends in "kernel".
    """
    return [v for v in model.trainable_weights if v.path.endswith("kernel")]


def weight_decay(model_or_kernels: Any, scale: float = WEIGHT_DECAY) -> Tensor:
    """The release's weight decay: the mean over conv kernels of scale · Σw² / 2.

    Args:
        model_or_kernels: a Keras model, or a list of kernels.
        scale: the L2 scale.

    Returns:
        A float32 scalar (0 without kernels).
    """
    kernels = (model_or_kernels if isinstance(model_or_kernels, (list, tuple))
               else conv_kernels(model_or_kernels))
    if not kernels:
        return tf.constant(0.0)
    terms = [scale * tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels]
    return tf.add_n(terms) / float(len(terms))


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the terms of the total loss (defaults: the release)."""
    dice: float = setting(1.0, "Weight of the Dice loss.", flag="dice_weight")
    ce: float = setting(1.0, "Weight of the cross-entropy.", flag="ce_weight")
    kl: float = setting(0.1, "Weight of the KL term (u_hved).", flag="kl_weight")
    recon: float = setting(0.1, "Weight of the reconstruction MSE (u_hved).",
                           flag="recon_weight")
    decay: float = setting(1.0, "Weight of the weight-decay term.", flag="decay_weight")
    decay_scale: float = setting(WEIGHT_DECAY, "L2 scale of the weight decay.",
                                 flag="weight_decay")

    def validate(self) -> LossWeights:
        """Checks every weight.

        Returns:
            This object, when every weight is a non-negative number.

        Raises:
            ValueError: naming the flag of the first that is not.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(f"--{f.metadata['flag']} must be a non-negative number, got "
                                 f"{value!r}.")
        return self


def total_loss(terms: dict, weights: LossWeights = LossWeights()) -> Tensor:
    """The weighted sum of the terms present.

    Args:
        terms: some of {"seg_dice", "seg_ce", "kl", "recon", "decay"}: scalars.
        weights: their weights.

    Returns:
        A float32 scalar.
    """
    mapping = {"seg_dice": weights.dice, "seg_ce": weights.ce, "kl": weights.kl,
               "recon": weights.recon, "decay": weights.decay}
    parts = [mapping[name] * tf.cast(value, tf.float32)
             for name, value in terms.items() if name in mapping]
    return tf.add_n(parts)


__all__ = ["cross_entropy", "dice_loss", "segmentation_terms", "segmentation_loss", "reconstruction_loss", "kl_normal",
           "kl_level", "kl_loss", "weight_decay", "conv_kernels", "total_loss", "LossWeights",
           "KL_VARIANTS", "NUM_CLASSES"]
