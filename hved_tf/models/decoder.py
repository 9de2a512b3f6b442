"""U-Net decoder over fused skip levels (docs/explanation/design.md, The networks).

Starts from the deepest level; for each shallower level l (deep to shallow): legacy TF1
bilinear resize to that skip's size, concatenation [upsampled, skip] on channels, then a block of
two units with n and n/2 channels, n = F·2^l. Last: 1x1x1 conv without bias or activation to
`out_channels` (1 for an image, 4 classes for the segmentation).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from hved_tf.gaussian import Tensor
from hved_tf.models.blocks import ConvBlock, _conv, register
from hved_tf.models.ops import resize_legacy_3d


@register
class Decoder(keras.layers.Layer):
    """skips: list of `levels` tensors, shallow to deep -> [B, X, Y, Z, out_channels]."""

    def __init__(self, base_filters=8, levels=4, out_channels=4, **kwargs):
        super().__init__(**kwargs)
        self.base_filters = int(base_filters)
        self.levels = int(levels)
        self.out_channels = int(out_channels)
        # Block j (1-based, deep to shallow) works at level levels-1-j with n = F·2^(levels-1-j).
        self.blocks = []
        for j in range(1, self.levels):
            n = self.base_filters * 2 ** (self.levels - 1 - j)
            self.blocks.append(ConvBlock((n, n // 2), name=f"block_{j}"))
        self.final_conv = _conv(self.out_channels, 1, 3, name="final_conv")

    def build(self, skip_shapes: list) -> None:
        """Creates the weights.

        Args:
            skip_shapes: the skips' shapes, shallow to deep.
        """
        skip_shapes = [tuple(s) for s in skip_shapes]
        channels = skip_shapes[-1][-1]
        for j, block in enumerate(self.blocks, start=1):
            target = skip_shapes[self.levels - 1 - j]
            block.build((*target[:-1], channels + target[-1]))
            channels = block.filters[1]
        self.final_conv.build((*skip_shapes[0][:-1], channels))

    def call(self, skips: list) -> Tensor:
        """The decoded output: up-sampled from the deepest skip, joined with each shallower.

        Args:
            skips: `levels` tensors, shallow to deep.

        Returns:
            [B, X, Y, Z, out_channels].
        """
        x = skips[-1]
        for j, block in enumerate(self.blocks, start=1):
            skip = skips[self.levels - 1 - j]
            up = resize_legacy_3d(x, tf.shape(skip)[1:4])
            up.set_shape([*skip.shape[:-1], x.shape[-1]])
            x = block(tf.concat([up, tf.cast(skip, up.dtype)], axis=-1))
        return self.final_conv(x)

    def get_config(self) -> dict:
        """The layer's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "base_filters": self.base_filters,
                "levels": self.levels, "out_channels": self.out_channels}
