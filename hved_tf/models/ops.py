"""The tensor operations of the original networks, as plain TensorFlow functions
(docs/explanation/design.md, The networks); the layers built on them: `hved_tf.models.blocks`.

- ``instance_norm``: per sample and channel over space, learned gamma/beta, epsilon 1e-6
  (NiftyNet's InstanceNormLayer, a wrapper of tf.contrib's instance_norm); the statistics in
  float32, summed in two stages (`spatial_sum`).
- ``leaky_relu``: slope 0.02 (NiftyNet writes it 0.51·x + 0.49·|x|).
- ``resize_legacy_3d``: TF1's ``resize_bilinear`` (align_corners=False, half_pixel_centers=False)
  applied separably, first over the last two spatial axes, then over the first, as NiftyNet's
  LinearResizeLayer does. Resizing the first axis over the flattened (Y, Z) plane is exact: the
  scale along the flattened axis is 1, so its interpolation weights are 0.
- ``max_pool_3d``: 2x2x2, stride 2.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

LEAKY_SLOPE = 0.02
INSTANCE_NORM_EPSILON = 1e-6
Tensor = Any          # a tf.Tensor (TensorFlow ships no type stubs)


def leaky_relu(x: Tensor) -> Tensor:
    """Leaky ReLU with the original's slope 0.02.

    Args:
        x: any tensor.

    Returns:
        x where positive, 0.02·x elsewhere.
    """
    return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def spatial_sum(x: Tensor) -> Tensor:
    """A sum over space: each row of the first spatial axis first, then the rows.
    TensorFlow's CPU reduction over all spatial axes at once accumulates millions of values in
    a way that loses precision: at 200x200x136 its mean is off by up to 3e-3 after
    normalisation, against 2e-6 summed in two stages (float64 reference,
    `tests/models/test_blocks.py`), and the two stages are no slower.

    Args:
        x: [B, *spatial, C].

    Returns:
        [B, 1.., C].
    """
    shape = tf.shape(x)
    rows = tf.reshape(x, tf.stack([shape[0], shape[1], -1, shape[-1]]))     # [B, X, rest, C]
    total = tf.reduce_sum(tf.reduce_sum(rows, axis=2), axis=1)              # [B, C]
    for _ in range(len(x.shape) - 2):
        total = tf.expand_dims(total, 1)
    return total


def spatial_moments(x32: Tensor) -> tuple[Tensor, Tensor]:
    """The mean and biased variance per sample and channel over space, the variance from the
    centred values (no E[x²] - E[x]² cancellation).

    Args:
        x32: float32 [B, *spatial, C].

    Returns:
        (mean, variance), each [B, 1.., C].
    """
    count = tf.cast(tf.reduce_prod(tf.shape(x32)[1:-1]), tf.float32)
    mean = spatial_sum(x32) / count
    return mean, spatial_sum(tf.square(x32 - mean)) / count


def instance_norm(x: Tensor, gamma: Any, beta: Any,
                  epsilon: float = INSTANCE_NORM_EPSILON) -> Tensor:
    """Instance normalisation: per sample and channel over space, float32 statistics.

    Args:
        x: [B, *spatial, C].
        gamma: [C], the scale.
        beta: [C], the shift.
        epsilon: added to the variance.

    Returns:
        x normalised, in x's dtype.
    """
    dtype = x.dtype
    x32 = tf.cast(x, tf.float32)
    mean, var = spatial_moments(x32)                                     # [B, 1.., C]
    scale = tf.math.rsqrt(var + epsilon) * tf.cast(gamma, tf.float32)    # [B, 1.., C]
    shift = tf.cast(beta, tf.float32) - mean * scale                     # [B, 1.., C]
    # One multiply-add over the volume instead of subtract, divide, scale, shift; under mixed
    # precision it runs in the compute dtype (statistics stay float32).
    return x * tf.cast(scale, dtype) + tf.cast(shift, dtype)


def _resize_bilinear_tf1(images, size):
    """TF1's resize_bilinear: align_corners=False, half_pixel_centers=False (float32 out)."""
    return tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=False,
                                     half_pixel_centers=False)


def resize_legacy_3d(x: Tensor, size: Any) -> Tensor:
    """TF1's bilinear resize, separably in 3-D (align_corners=False, half_pixel_centers=False:
    output index i samples the input at i * in/out, interpolating linearly, the upper
    neighbour clamped to the last index).

    Args:
        x: [B, X, Y, Z, C].
        size: (X', Y', Z'), a tensor or a sequence.

    Returns:
        [B, X', Y', Z', C] in x's dtype (the op itself computes in float32).
    """
    dtype = x.dtype
    shape = tf.shape(x)
    b, nx, ny, nz, c = shape[0], shape[1], shape[2], shape[3], shape[4]
    size = tf.convert_to_tensor(size, tf.int32)
    ox, oy, oz = size[0], size[1], size[2]
    # Resize (Y, Z) for every x.
    yz = tf.reshape(x, tf.stack([b * nx, ny, nz, c]))
    yz = _resize_bilinear_tf1(yz, tf.stack([oy, oz]))                        # [B*X, Y', Z', C]
    # Resize X: the (Y', Z') plane flattened into one axis whose size does not change.
    xs = tf.reshape(yz, tf.stack([b, nx, oy * oz, c]))
    xs = _resize_bilinear_tf1(xs, tf.stack([ox, oy * oz]))                   # [B, X', Y'Z', C]
    out = tf.reshape(xs, tf.stack([b, ox, oy, oz, c]))
    static = [x.shape[0]] + [None] * 3 + [x.shape[-1]]
    out.set_shape(static)
    return tf.cast(out, dtype)


def max_pool_3d(x: Tensor) -> Tensor:
    """2x2x2 max pooling, stride 2, SAME padding.

    Args:
        x: [B, X, Y, Z, C].

    Returns:
        [B, ceil(X/2), ceil(Y/2), ceil(Z/2), C].
    """
    return tf.nn.max_pool3d(x, ksize=2, strides=2, padding="SAME")
