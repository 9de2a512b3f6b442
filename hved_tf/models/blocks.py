"""Building blocks of the original networks (docs/explanation/design.md, The networks).

- ``InstanceNorm``: per sample and channel over space, learned gamma/beta, epsilon 1e-6
  (NiftyNet's InstanceNormLayer, a wrapper of tf.contrib's instance_norm).
- ``leaky_relu``: slope 0.02 (NiftyNet writes it 0.51·x + 0.49·|x|).
- ``ConvUnit``: instance norm -> leaky ReLU -> 3x3x3 convolution, SAME padding, no bias. Called
  with ``training=True`` the norm and ReLU run as ``norm_act.fused_norm_act`` (same values, a
  closed-form gradient, XLA-fused); otherwise as the plain ops below.
- ``ConvBlock``: two units.
- ``StemConv``: 1x1x1 convolution without bias, then leaky ReLU (the encoders' first layer).
- ``resize_legacy_3d``: TF1's ``resize_bilinear`` (align_corners=False, half_pixel_centers=False)
  applied separably, first over the last two spatial axes, then over the first, as NiftyNet's
  LinearResizeLayer does. Resizing the first axis over the flattened (Y, Z) plane is exact: the
  scale along the flattened axis is 1, so its interpolation weights are 0.
- ``NiftyNetHeNormal``: NiftyNet's default kernel initialiser, a normal with
  stddev sqrt(2 / fan_in) truncated at 2 stddev (no variance correction, unlike Keras' HeNormal).

Under a mixed precision policy the normalisation statistics are computed in float32.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from hved_tf.models.norm_act import fused_norm_act

LEAKY_SLOPE = 0.02
INSTANCE_NORM_EPSILON = 1e-6

register = keras.saving.register_keras_serializable(package="hved_tf")


@register
class NiftyNetHeNormal(keras.initializers.Initializer):
    """Truncated normal with stddev sqrt(2 / fan_in), fan_in = prod(shape[:-1])."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        fan_in = math.prod(shape[:-1])
        stddev = math.sqrt(2.0 / max(fan_in, 1))
        init = keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev, seed=self.seed)
        return init(shape, dtype=dtype)

    def get_config(self):
        return {"seed": self.seed}


def leaky_relu(x):
    """Leaky ReLU with the original's slope 0.02."""
    return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def spatial_sum(x):
    """x [B, *spatial, C] summed over space, [B, 1.., C]: each row of the first spatial axis
    first, then the rows. TensorFlow's CPU reduction over all spatial axes at once accumulates
    millions of values in a way that loses precision: at 200x200x136 its mean is off by up to
    3e-3 after normalisation, against 2e-6 summed in two stages (float64 reference,
    `tests/models/test_blocks.py`), and the two stages are no slower."""
    shape = tf.shape(x)
    rows = tf.reshape(x, tf.stack([shape[0], shape[1], -1, shape[-1]]))     # [B, X, rest, C]
    total = tf.reduce_sum(tf.reduce_sum(rows, axis=2), axis=1)              # [B, C]
    for _ in range(len(x.shape) - 2):
        total = tf.expand_dims(total, 1)
    return total


def spatial_moments(x32):
    """(mean, biased variance) of float32 x [B, *spatial, C] per sample and channel over
    space, [B, 1.., C]; the variance from the centred values (no E[x²] - E[x]² cancellation)."""
    count = tf.cast(tf.reduce_prod(tf.shape(x32)[1:-1]), tf.float32)
    mean = spatial_sum(x32) / count
    return mean, spatial_sum(tf.square(x32 - mean)) / count


def instance_norm(x, gamma, beta, epsilon=INSTANCE_NORM_EPSILON):
    """x [B, *spatial, C] normalised per sample and channel over space; float32 statistics."""
    dtype = x.dtype
    x32 = tf.cast(x, tf.float32)
    mean, var = spatial_moments(x32)                                     # [B, 1.., C]
    scale = tf.math.rsqrt(var + epsilon) * tf.cast(gamma, tf.float32)    # [B, 1.., C]
    shift = tf.cast(beta, tf.float32) - mean * scale                     # [B, 1.., C]
    # One multiply-add over the volume instead of subtract, divide, scale, shift; under mixed
    # precision it runs in the compute dtype (statistics stay float32).
    return x * tf.cast(scale, dtype) + tf.cast(shift, dtype)


@register
class InstanceNorm(keras.layers.Layer):
    """Instance normalisation with learned gamma (init 1) and beta (init 0)."""

    def __init__(self, epsilon=INSTANCE_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        return instance_norm(x, self.gamma, self.beta, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _conv(filters, kernel_size, rank, name, use_bias=False, activation=None, seed=None):
    cls = keras.layers.Conv3D if rank == 3 else keras.layers.Conv2D
    return cls(filters, kernel_size, padding="same", use_bias=use_bias, activation=activation,
               kernel_initializer=NiftyNetHeNormal(seed), name=name)


@register
class ConvUnit(keras.layers.Layer):
    """Instance norm -> leaky ReLU -> k^3 convolution without bias."""

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.norm = InstanceNorm(name="norm")
        self.conv = _conv(self.filters, self.kernel_size, 3, name="conv")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.conv.build(input_shape)

    def call(self, x, training=None):
        if training is True:
            return self.conv(fused_norm_act(x, self.norm.gamma, self.norm.beta,
                                            self.norm.epsilon, slope=LEAKY_SLOPE))
        return self.conv(leaky_relu(self.norm(x)))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@register
class ConvBlock(keras.layers.Layer):
    """Two ConvUnits with `filters[0]` then `filters[1]` output channels."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        if len(self.filters) != 2:
            raise ValueError(f"ConvBlock takes two filter counts, got {filters!r}.")
        self.unit_0 = ConvUnit(self.filters[0], name="unit_0")
        self.unit_1 = ConvUnit(self.filters[1], name="unit_1")

    @property
    def units(self):
        return (self.unit_0, self.unit_1)

    def build(self, input_shape):
        self.unit_0.build(input_shape)
        self.unit_1.build((*input_shape[:-1], self.filters[0]))

    def call(self, x):
        return self.unit_1(self.unit_0(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters[1])

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters)}


@register
class StemConv(keras.layers.Layer):
    """1x1x1 convolution without bias, then leaky ReLU."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv = _conv(self.filters, 1, 3, name="conv")

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, x):
        return leaky_relu(self.conv(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _resize_bilinear_tf1(images, size):
    """TF1's resize_bilinear: align_corners=False, half_pixel_centers=False (float32 out)."""
    return tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=False,
                                     half_pixel_centers=False)


def resize_legacy_3d(x, size):
    """TF1 bilinear resize of x [B, X, Y, Z, C] to spatial `size` (X', Y', Z'), separably.

    align_corners=False, half_pixel_centers=False: output index i samples the input at
    i * in/out, interpolating linearly, the upper neighbour clamped to the last index.
    `size` may be a tensor. The result has x's dtype (the op itself computes in float32).
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


def max_pool_3d(x):
    """2x2x2 max pooling, stride 2, SAME padding."""
    return tf.nn.max_pool3d(x, ksize=2, strides=2, padding="SAME")
