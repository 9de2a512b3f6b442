"""Building blocks of the original networks (docs/explanation/design.md, The networks), as
Keras layers over the operations of `hved_tf.models.ops`.

- ``InstanceNorm``: `ops.instance_norm` with learned gamma (init 1) and beta (init 0).
- ``ConvUnit``: instance norm -> leaky ReLU -> 3x3x3 convolution, SAME padding, no bias. Called
  with ``training=True`` the norm and ReLU run as ``norm_act.fused_norm_act`` (same values, a
  closed-form gradient, XLA-fused); otherwise as the plain ops.
- ``ConvBlock``: two units.
- ``StemConv``: 1x1x1 convolution without bias, then leaky ReLU (the encoders' first layer).
- ``NiftyNetHeNormal``: NiftyNet's default kernel initialiser, a normal with
  stddev sqrt(2 / fan_in) truncated at 2 stddev (no variance correction, unlike Keras' HeNormal).

Under a mixed precision policy the normalisation statistics are computed in float32.
"""
from __future__ import annotations

import math
from typing import Any

import keras

from hved_tf.models.norm_act import fused_norm_act
from hved_tf.models.ops import (INSTANCE_NORM_EPSILON, LEAKY_SLOPE, Tensor, instance_norm,
                                leaky_relu)

register = keras.saving.register_keras_serializable(package="hved_tf")


@register
class NiftyNetHeNormal(keras.initializers.Initializer):
    """Truncated normal with stddev sqrt(2 / fan_in), fan_in = prod(shape[:-1])."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        """Initial values of a kernel.

        Args:
            shape: the kernel's (fan_in = the product of all but the last).
            dtype: of the values.

        Returns:
            A truncated normal with stddev sqrt(2 / fan_in).
        """
        fan_in = math.prod(shape[:-1])
        stddev = math.sqrt(2.0 / max(fan_in, 1))
        init = keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev, seed=self.seed)
        return init(shape, dtype=dtype)

    def get_config(self) -> dict:
        """The initialiser's config (Keras serialisation).

        Returns:
            {"seed"}.
        """
        return {"seed": self.seed}


@register
class InstanceNorm(keras.layers.Layer):
    """Instance normalisation with learned gamma (init 1) and beta (init 0)."""

    def __init__(self, epsilon=INSTANCE_NORM_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple) -> None:
        """Creates the weights.

        Args:
            input_shape: [B, *spatial, C].
        """
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x: Tensor) -> Tensor:
        """`ops.instance_norm` with the layer's gamma and beta.

        Args:
            x: [B, *spatial, C].

        Returns:
            x normalised, in x's dtype.
        """
        return instance_norm(x, self.gamma, self.beta, self.epsilon)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output's shape.

        Args:
            input_shape: [B, *spatial, C].

        Returns:
            The same.
        """
        return input_shape

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
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

    def build(self, input_shape: tuple) -> None:
        """Creates the weights.

        Args:
            input_shape: [B, X, Y, Z, C].
        """
        self.norm.build(input_shape)
        self.conv.build(input_shape)

    def call(self, x: Tensor, training: bool | None = None) -> Tensor:
        """Norm, leaky ReLU, convolution (the first two fused when training).

        Args:
            x: [B, X, Y, Z, C].
            training: Keras' flag.

        Returns:
            [B, X, Y, Z, filters].
        """
        if training is True:
            return self.conv(fused_norm_act(x, self.norm.gamma, self.norm.beta,
                                            self.norm.epsilon, slope=LEAKY_SLOPE))
        return self.conv(leaky_relu(self.norm(x)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output's shape.

        Args:
            input_shape: [B, X, Y, Z, C].

        Returns:
            [B, X, Y, Z, filters].
        """
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
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
    def units(self) -> tuple:
        """The two ConvUnits."""
        return (self.unit_0, self.unit_1)

    def build(self, input_shape: tuple) -> None:
        """Creates the weights.

        Args:
            input_shape: [B, X, Y, Z, C].
        """
        self.unit_0.build(input_shape)
        self.unit_1.build((*input_shape[:-1], self.filters[0]))

    def call(self, x: Tensor) -> Tensor:
        """The two units.

        Args:
            x: [B, X, Y, Z, C].

        Returns:
            [B, X, Y, Z, filters[1]].
        """
        return self.unit_1(self.unit_0(x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output's shape.

        Args:
            input_shape: [B, X, Y, Z, C].

        Returns:
            [B, X, Y, Z, filters[1]].
        """
        return (*input_shape[:-1], self.filters[1])

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "filters": list(self.filters)}


@register
class StemConv(keras.layers.Layer):
    """1x1x1 convolution without bias, then leaky ReLU."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv = _conv(self.filters, 1, 3, name="conv")

    def build(self, input_shape: tuple) -> None:
        """Creates the weights.

        Args:
            input_shape: [B, X, Y, Z, C].
        """
        self.conv.build(input_shape)

    def call(self, x: Tensor) -> Tensor:
        """The 1x1x1 convolution, then leaky ReLU.

        Args:
            x: [B, X, Y, Z, C].

        Returns:
            [B, X, Y, Z, filters].
        """
        return leaky_relu(self.conv(x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output's shape.

        Args and Returns: as `ConvUnit.compute_output_shape`.
        """
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "filters": self.filters}
