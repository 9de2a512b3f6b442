"""Instance norm then leaky ReLU, fused for training: one function with a closed-form gradient.

Every ConvUnit starts with instance norm then leaky ReLU (ops.py). Autodiff of that plain
formulation writes about ten full-size tensors per unit and keeps most of them for the backward
pass. This version saves 0.25-0.7 s of a 6-7 s float32 U-HVED training step at 112³, 0.4-0.75 s
in bf16 (`python -m tools.benchmarks.precision`, rows "model" and "plain_norm"). In training,
the units use this version instead: the same function, computed in float32 whatever the compute
dtype, whose gradient is written out by hand. Forward and backward are each one XLA-compiled
function of elementwise code and per-channel sums, which XLA fuses into a few loops over the
volume. Inference and the export keep the plain, un-jitted version (no compilation for every new
volume shape, nothing XLA-specific in a SavedModel). The convolutions stay un-jitted: XLA makes
Conv3D training far slower on a CPU.

Per sample and channel, over the N voxels of x, with mu = mean(x), var = mean((x - mu)²),
r = 1 / sqrt(var + eps), s = gamma·r and t = beta - mu·s:

    y = s·x + t,    a = y if y > 0 else slope·y

and for an upstream gradient da, with dy = da·(1 if y > 0 else slope) and c = x - mu:

    d beta  = Σ dy,    d gamma = r·Σ dy·c
    dx      = s·(dy - mean(dy) - c·r²·mean(dy·c))

(the batch-norm gradient, exact with eps). gamma and beta gradients are summed over the batch.
At y = 0 the ReLU's slope is taken as `slope`, as TF's LeakyReluGrad does.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from hved_tf.gaussian import Tensor


def _spatial_axes(x):
    return list(range(1, len(x.shape) - 1))


def _affine(x32, gamma, beta, epsilon):
    """(mean, r, scale, shift) per sample and channel, [B, 1.., C] float32."""
    mean, var = tf.nn.moments(x32, axes=_spatial_axes(x32), keepdims=True)
    r = tf.math.rsqrt(var + epsilon)
    scale = r * tf.cast(gamma, tf.float32)
    return mean, r, scale, tf.cast(beta, tf.float32) - mean * scale


def norm_act_forward(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: float,
                     slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """leaky_relu(instance_norm(x)), with the statistics its gradient needs.

    Args:
        x: [B, *spatial, C].
        gamma: [C], the norm's scale.
        beta: [C], its shift.
        epsilon: added to the variance.
        slope: of the leaky ReLU.

    Returns:
        (activation in x's dtype, mean, r = 1 / sqrt(var + epsilon)), the last two float32
        [B, 1.., C].
    """
    x32 = tf.cast(x, tf.float32)
    mean, r, scale, shift = _affine(x32, gamma, beta, epsilon)
    y = x32 * scale + shift
    return tf.cast(tf.where(y > 0, y, slope * y), x.dtype), mean, r


def norm_act_backward(x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, r: Tensor,
                      upstream: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """The closed-form gradient of `norm_act_forward`.

    Args:
        x: the forward's input.
        gamma: its scale.
        beta: its shift.
        mean: the forward's mean.
        r: the forward's 1 / sqrt(var + epsilon).
        upstream: the gradient of the activation.
        slope: of the leaky ReLU.

    Returns:
        (dx in x's dtype, d gamma, d beta in gamma's and beta's dtypes).
    """
    x32 = tf.cast(x, tf.float32)
    axes = _spatial_axes(x32)
    scale = r * tf.cast(gamma, tf.float32)
    y = x32 * scale + (tf.cast(beta, tf.float32) - mean * scale)
    dy = tf.cast(upstream, tf.float32) * tf.where(y > 0, 1.0, slope)
    c = x32 - mean
    count = tf.cast(tf.reduce_prod(tf.shape(x32)[1:-1]), tf.float32)
    sum_dy = tf.reduce_sum(dy, axis=axes, keepdims=True)                 # [B, 1.., C]
    sum_dyc = tf.reduce_sum(dy * c, axis=axes, keepdims=True)             # [B, 1.., C]
    dx = scale * (dy - sum_dy / count - c * (r * r) * (sum_dyc / count))
    batch_axes = [0, *axes]
    d_beta = tf.reduce_sum(sum_dy, axis=batch_axes)
    d_gamma = tf.reduce_sum(sum_dyc * r, axis=batch_axes)
    return tf.cast(dx, x.dtype), tf.cast(d_gamma, gamma.dtype), tf.cast(d_beta, beta.dtype)


_forward_xla = tf.function(norm_act_forward, jit_compile=True)
_backward_xla = tf.function(norm_act_backward, jit_compile=True)


def fused_norm_act(x: Tensor, gamma: Any, beta: Any, epsilon: float, slope: float,
                   jit_compile: bool = True) -> Tensor:
    """leaky_relu(instance_norm(x)) with the closed-form gradient (XLA-compiled by default):
    the same value as `ops.leaky_relu(ops.instance_norm(x, gamma, beta, epsilon))`.

    Args:
        x: [B, *spatial, C], float32, bfloat16 or float16.
        gamma: [C] (a variable or a tensor).
        beta: [C].
        epsilon: added to the variance.
        slope: of the leaky ReLU.
        jit_compile: the forward and backward XLA-compiled.

    Returns:
        The activation, in x's dtype.
    """
    forward = _forward_xla if jit_compile else norm_act_forward
    backward = _backward_xla if jit_compile else norm_act_backward
    epsilon, slope = float(epsilon), float(slope)
    # Variables are read here, outside the custom gradient, so the tape sees plain tensors.
    gamma, beta = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)

    @tf.custom_gradient
    def fn(x, gamma, beta):
        a, mean, r = forward(x, gamma, beta, epsilon=epsilon, slope=slope)

        def grad(upstream):
            return backward(x, gamma, beta, mean, r=r, upstream=upstream, slope=slope)

        return a, grad

    return fn(x, gamma, beta)
