"""Per-modality convolutional encoder of U-HVED / U-HeMIS / the subset U-Net (docs/explanation/design.md, The networks).

Stem (1x1x1 conv, no bias, leaky ReLU) to F channels, then `levels` blocks of two units; block l
(0-based) has F·2^l channels in its first unit and F·2^l (U-HVED) or F·2^l / 2 (U-HeMIS, "halved")
in its second. 2x2x2 max pooling follows every block but the last. Each block's output, before
pooling, is one skip level. No residual additions (the original's "ResBlock" has none).
"""
from __future__ import annotations

import keras

from hved_tf.gaussian import Tensor
from hved_tf.models.blocks import ConvBlock, StemConv, register
from hved_tf.models.ops import max_pool_3d


def encoder_widths(base_filters: int, levels: int, halved: bool) -> list[tuple[int, int]]:
    """The widths of an encoder's blocks.

    Args:
        base_filters: F, the first level's width.
        levels: the number of blocks (scales).
        halved: U-HeMIS' encoders: each block's second convolution half as wide.

    Returns:
        [(first, second) channels of each block].
    """
    widths = []
    for level in range(levels):
        n = base_filters * 2 ** level
        widths.append((n, n // 2 if halved else n))
    return widths


@register
class Encoder(keras.layers.Layer):
    """x [B, X, Y, Z, Cin] -> list of `levels` skips, [B, X/2^l, Y/2^l, Z/2^l, C_l]."""

    def __init__(self, base_filters=8, levels=4, halved=False, **kwargs):
        super().__init__(**kwargs)
        self.base_filters = int(base_filters)
        self.levels = int(levels)
        self.halved = bool(halved)
        self.widths = encoder_widths(self.base_filters, self.levels, self.halved)
        self.stem = StemConv(self.base_filters, name="stem")
        self.blocks = [ConvBlock(w, name=f"block_{i + 1}") for i, w in enumerate(self.widths)]

    def build(self, input_shape: tuple) -> None:
        """Creates the weights.

        Args:
            input_shape: [B, X, Y, Z, Cin].
        """
        shape = tuple(input_shape)
        self.stem.build(shape)
        channels = self.base_filters
        for block, (_, out) in zip(self.blocks, self.widths):
            block.build((*shape[:-1], channels))
            channels = out

    def call(self, x: Tensor) -> list:
        """The encoder's features at each scale.

        Args:
            x: [B, X, Y, Z, Cin].

        Returns:
            `levels` skips, shallow to deep, [B, X/2^l, Y/2^l, Z/2^l, C_l].
        """
        skips = []
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            skips.append(x)
            if i < self.levels - 1:
                x = max_pool_3d(x)
        return skips

    @property
    def skip_channels(self) -> list:
        """The channels of each skip."""
        return [w[1] for w in self.widths]

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "base_filters": self.base_filters,
                "levels": self.levels, "halved": self.halved}
