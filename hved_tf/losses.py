"""Losses of the original release (docs/explanation/design.md, Training numerics), as pure TF functions. No I/O.

- ``cross_entropy``: mean sparse softmax cross-entropy over voxels (and batch).
- ``dice_loss``: the Dice of the released graph: softmax probabilities p, one-hot g, per sample
  and class over all voxels 2·Σpg / (Σp² + Σg + 1e-5), the epsilon only in the denominator (an
  absent class scores 0); 1 - mean over the 4 classes (background included); mean over the batch.
  ``numerator_epsilon=1e-5`` gives NiftyNet 0.5.0's own variant.
- ``reconstruction_loss``: MSE between the decoded and the input images over the modalities a
  subject has (all four when nothing is missing, as in the original, dropped ones included).
- ``kl_normal``: elementwise closed-form KL(N1 || N2) (re-exported from `hved_tf.gaussian`, the
  home of the Gaussian formulas: product of experts, KL, sampling).
- ``kl_loss``: "original" (released code) or "paper" variant, averaged over the latent levels.
  The "original" one runs as one XLA-compiled function returning its value and analytic gradient
  (a departure from "no XLA by default": it compiles elementwise code only, see the comment at
  `_kl_original_value_and_grad`; ``fused=False`` gives plain autodiff of the same formulas).
- ``weight_decay``: mean over conv kernels of 1e-5 · Σw² / 2 (the release's reduce_mean of its
  L2 regularisation losses).
- ``total_loss``: Dice + CE + 0.1·KL + 0.1·L2 + decay, weights configurable.
Everything is float32 whatever the model's compute dtype.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from hved_tf import gaussian
from hved_tf.gaussian import KL_EPSILON, kl_normal, product_of_gaussians
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


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy. logits [B, *spatial, K]; labels [B, *spatial(, 1)]."""
    logits = tf.cast(logits, tf.float32)
    labels = _labels_to_int(labels, logits)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)  # [B, ...]
    return tf.reduce_mean(ce)


def dice_loss(logits, labels, numerator_epsilon=0.0, denominator_epsilon=DICE_EPSILON):
    """1 - mean over classes of the soft Dice per sample, averaged over the batch."""
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


def segmentation_terms(logits, labels, numerator_epsilon=0.0):
    """{"seg_ce": cross-entropy, "seg_dice": Dice loss}: the terms the models report."""
    return {"seg_ce": cross_entropy(logits, labels),
            "seg_dice": dice_loss(logits, labels, numerator_epsilon=numerator_epsilon)}


def segmentation_loss(logits, labels, numerator_epsilon=0.0):
    """Cross-entropy + Dice (the release's segmentation loss)."""
    terms = segmentation_terms(logits, labels, numerator_epsilon)
    return terms["seg_ce"] + terms["seg_dice"]


def reconstruction_loss(recon, image, available=None):
    """Mean squared error over the voxels of the available modalities.

    recon, image: [B, *spatial, M]; available: [B, M] (1 = the subject has it), default all.
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


def _mean_per_sample(x):
    """[B, ...] -> [B]."""
    return tf.reduce_mean(tf.reshape(x, tf.stack([tf.shape(x)[0], -1])), axis=-1)


def kl_level(mean, logvar, mask, available=None, variant="original", fused=True):
    """KL term of one latent level, [B].

    mean, logvar: per-modality posteriors [B, M, *spatial, C]; mask: the drawn subset [B, M];
    available: the modalities the subject has [B, M] (default all).
    "paper":    KL(q_mask || N(0, I)).
    "original": mean over s≠… of KL(q_mask || q_s) with weight 1/(n_s - 1), plus the mean over s
                of KL(q_s || N(0, I)), s ranging over the non-empty subsets of the available
                modalities (n_s of them: 15 when all four are there, giving the release's 1/14
                and 1/15). The sum over s includes s = mask itself, as the release's does.
    Each KL is the mean over a sample's elements. `fused` computes the "original" variant with
    its analytic gradient in one XLA-compiled function (same values, a fraction of the memory and
    time); False: plain autodiff of the same formulas.
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


# The original KL compares 15 subset posteriors elementwise at every level: in plain TF each of
# its ~20 elementwise steps is a pass writing a [B, 15, N] tensor (337 MB at level 1 of a 112^3
# patch), and autodiff keeps them all for the backward pass (measured: +5 GB and +1.4 s a step).
# Here one function computes the value and its analytic gradient with respect to the experts'
# means and log-variances, and XLA compiles it into a few fused loops; only the gradient,
# [B, M, N] like the inputs, is kept for the backward pass, which just scales it. Measured at
# 112^3 level 1: 0.49 s against 1.3 s for plain autodiff. XLA compiles this elementwise code
# only; the convolutions stay un-jitted (XLA makes Conv3D training far slower on a CPU).
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


def kl_loss(means, logvars, mask, available=None, variant="original"):
    """Mean over levels and batch of `kl_level`. means, logvars: lists over levels."""
    terms = [kl_level(m, lv, mask, available, variant=variant) for m, lv in zip(means, logvars)]
    return tf.reduce_mean(tf.add_n(terms) / float(len(terms)))


def conv_kernels(model):
    """The convolution kernels of a model (the variables the release regularised)."""
    return [v for v in model.trainable_weights if v.path.endswith("kernel")]


def weight_decay(model_or_kernels, scale=WEIGHT_DECAY):
    """Mean over conv kernels of scale · Σw² / 2."""
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

    def validate(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(f"--{f.metadata['flag']} must be a non-negative number, got "
                                 f"{value!r}.")
        return self


def total_loss(terms, weights=LossWeights()):
    """Weighted sum of the available terms of {"seg_dice", "seg_ce", "kl", "recon", "decay"}."""
    mapping = {"seg_dice": weights.dice, "seg_ce": weights.ce, "kl": weights.kl,
               "recon": weights.recon, "decay": weights.decay}
    parts = [mapping[name] * tf.cast(value, tf.float32)
             for name, value in terms.items() if name in mapping]
    return tf.add_n(parts)


__all__ = ["cross_entropy", "dice_loss", "segmentation_terms", "segmentation_loss", "reconstruction_loss", "kl_normal",
           "kl_level", "kl_loss", "weight_decay", "conv_kernels", "total_loss", "LossWeights",
           "KL_VARIANTS", "NUM_CLASSES"]
