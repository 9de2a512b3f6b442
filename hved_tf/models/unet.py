"""The paper's "Single" baseline: a U-Net trained on one fixed modality subset.

The chosen modalities are concatenated on channels and fed to one encoder; its block outputs
have the widths of U-HVED's latents (the U-HeMIS encoder: second unit halved, F/2, F, 2F, 4F), so
the decoder is exactly U-HVED's segmentation decoder. The model only accepts its own subset: a
mask naming any other set of modalities is an error.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from hved_tf.modalities import NUM_CLASSES, parse_subset, subset_code, subset_mask
from hved_tf.models.base import HeteroModalModel
from hved_tf.models.blocks import register
from hved_tf.models.decoder import Decoder
from hved_tf.models.encoder import Encoder
from hved_tf.models.hemis import SEG_TERMS
from hved_tf.models.hved import check_int


@register
class SubsetUNet(HeteroModalModel):
    """U-Net over the modalities of `subset` (a code like "T1c+FLAIR"; default all four)."""

    kind = "unet"

    loss_terms = SEG_TERMS

    def __init__(self, subset="T1+T1c+T2+FLAIR", base_filters=8, levels=4,
                 num_classes=NUM_CLASSES, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        check_int("base_filters", base_filters, 2)
        check_int("levels", levels, 2)
        self.subset = subset_code(parse_subset(subset))
        self.indices = list(parse_subset(self.subset))
        self.base_filters, self.levels = int(base_filters), int(levels)
        self.encoder = Encoder(base_filters, levels, halved=True, name="encoder")
        self.seg_decoder = Decoder(base_filters, levels, num_classes, name="decoder_seg")

    def _check_mask(self, mask):
        expected = tf.constant(subset_mask(self.indices))
        same = tf.reduce_all(tf.equal(tf.cast(mask > 0, tf.float32), expected[None]))
        message = (f"{self.name} was trained on the modalities {self.subset} and runs only on "
                   "them; the mask names another set. Train a U-Net for that subset, or use "
                   "u_hved / u_hemis, which take any subset.")
        if tf.executing_eagerly():
            if not bool(same):
                got = np.asarray(mask).tolist()
                raise ValueError(f"{message} Got mask {got}.")
        else:
            tf.debugging.Assert(same, [message])

    def forward(self, image: Any, mask: Any, training: bool | None = None) -> dict:
        """The segmentation of the subset's modalities (another mask is refused).

        Args and Returns: as `HeteroModalModel.forward`.
        """
        self._check_mask(mask)
        x = tf.gather(tf.cast(image, self.compute_dtype), self.indices, axis=-1)
        logits = tf.cast(self.seg_decoder(self.encoder(x, training=training), training=training),
                         tf.float32)
        return {"seg_logits": logits, "seg_probabilities": tf.nn.softmax(logits, axis=-1)}

    def draw_masks(self, available: Any) -> Any:
        """No draw: the subset is fixed; every sample must have its modalities.

        Args:
            available: [B, 4].

        Returns:
            [B, 4], the subset's mask for each sample.
        """
        expected = tf.constant(subset_mask(self.indices))
        tf.debugging.Assert(
            tf.reduce_all(tf.cast(available, tf.float32) >= expected[None]),
            [f"A training subject lacks a modality of the U-Net's subset {self.subset}."])
        return tf.tile(expected[None], tf.stack([tf.shape(available)[0], 1]))

    def compute_loss_terms(self, image: Any, labels: Any, mask: Any, available: Any,
                           training: bool) -> dict:
        """The loss terms of one batch: segmentation only ("seg_ce", "seg_dice", "decay").

        Args and Returns: as `HeteroModalModel.compute_loss_terms`.
        """
        logits = self.forward(image, mask, training)["seg_logits"]
        return self.segmentation_terms(logits, labels)

    def build(self, input_shape: Any = None) -> None:
        """Creates the weights (a forward pass on a small zero volume).

        Args:
            input_shape: unused (any size divisible by the pooling factor runs).
        """
        if self.built:
            return
        size = 2 ** self.levels
        mask = tf.constant(subset_mask(self.indices))[None]
        self.forward(tf.zeros((1, size, size, size, 4)), mask)
        self.built = True
        self.seed_weights()

    def get_config(self) -> dict:
        """The model's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "subset": self.subset, "base_filters": self.base_filters,
                "levels": self.levels}
