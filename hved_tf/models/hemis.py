"""U-HeMIS (the release's baseline) and HeMIS (Havaei et al., MICCAI 2016).

U-HeMIS: the U-HVED encoders with halved second units, the HeMIS moments fusion (mean and
population variance over the present modalities) at every scale, and one segmentation decoder.

HeMIS: 2-D, slice by slice along the last spatial axis (axial slices of a RAS volume). Per
modality a back-end of two 5x5 convolutions with 48 filters and ReLU, then 2x2 max pooling with
stride 1 (SAME, so the slice keeps its size); fusion by mean and variance over the present
modalities; a front-end of a 5x5 convolution with 16 filters and ReLU and a 21x21 convolution to
the classes. Convolutions have biases, as in the HeMIS paper.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from hved_tf.modalities import MODALITIES, NUM_CLASSES, NUM_MODALITIES
from hved_tf.models.base import HeteroModalModel
from hved_tf.models.contract import masked_image
from hved_tf.models.blocks import NiftyNetHeNormal, register
from hved_tf.models.decoder import Decoder
from hved_tf.models.encoder import Encoder
from hved_tf.models.fusion import MomentsFusion, hemis_moments
from hved_tf.models.hved import check_int

SEG_TERMS = ("loss", "seg_dice", "seg_ce", "decay")


@register
class UHeMIS(HeteroModalModel):
    """U-Net with HeMIS fusion of the skip connections."""

    kind = "u_hemis"

    loss_terms = SEG_TERMS

    def __init__(self, base_filters=8, levels=4, num_classes=NUM_CLASSES, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        check_int("base_filters", base_filters, 2)
        check_int("levels", levels, 2)
        self.base_filters, self.levels = int(base_filters), int(levels)
        self.encoders = [Encoder(base_filters, levels, halved=True, name=f"encoder_{m}")
                         for m in MODALITIES]
        self.fusions = [MomentsFusion(name=f"fusion_{level + 1}") for level in range(levels)]
        self.seg_decoder = Decoder(base_filters, levels, num_classes, name="decoder_seg")

    def forward(self, image: Any, mask: Any, training: bool | None = None) -> dict:
        """The segmentation of a masked batch.

        Args and Returns: as `HeteroModalModel.forward`.
        """
        image = masked_image(tf.cast(image, self.compute_dtype), mask)
        per_modality = [enc(image[..., i:i + 1], training=training)
                        for i, enc in enumerate(self.encoders)]
        fused = []
        for level, fusion in enumerate(self.fusions):
            stacked = tf.stack([skips[level] for skips in per_modality], axis=1)
            fused.append(tf.cast(fusion(stacked, mask), self.compute_dtype))
        logits = tf.cast(self.seg_decoder(fused, training=training), tf.float32)
        return {"seg_logits": logits, "seg_probabilities": tf.nn.softmax(logits, axis=-1)}

    def compute_loss_terms(self, image: Any, labels: Any, mask: Any, available: Any,
                           training: bool) -> dict:
        """The loss terms of one batch: segmentation only ("seg_ce", "seg_dice", "decay").

        Args and Returns: as `HeteroModalModel.compute_loss_terms`.
        """
        logits = self.forward(masked_image(image, available), mask, training)["seg_logits"]
        return self.segmentation_terms(logits, labels)

    def get_config(self) -> dict:
        """The model's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "base_filters": self.base_filters, "levels": self.levels}


def _conv2d(filters, size, name, activation=None):
    return keras.layers.Conv2D(filters, size, padding="same", activation=activation,
                               kernel_initializer=NiftyNetHeNormal(), name=name)


@register
class HeMIS(HeteroModalModel):
    """Havaei et al.'s HeMIS, applied to each slice along the last spatial axis."""

    kind = "hemis"

    loss_terms = SEG_TERMS
    levels = 1

    def __init__(self, num_classes=NUM_CLASSES, backend_filters=48, frontend_filters=16,
                 **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        check_int("backend_filters", backend_filters, 1)
        check_int("frontend_filters", frontend_filters, 1)
        self.backend_filters, self.frontend_filters = int(backend_filters), int(frontend_filters)
        self.backends = [
            [_conv2d(backend_filters, 5, f"backend_{m}_conv_1", "relu"),
             _conv2d(backend_filters, 5, f"backend_{m}_conv_2", "relu")]
            for m in MODALITIES]
        self.frontend_conv = _conv2d(frontend_filters, 5, "frontend_conv", "relu")
        self.classifier = _conv2d(num_classes, 21, "classifier")

    def forward(self, image: Any, mask: Any, training: bool | None = None) -> dict:
        """The segmentation of a masked batch.

        Args and Returns: as `HeteroModalModel.forward`.
        """
        image = masked_image(tf.cast(image, self.compute_dtype), mask)
        shape = tf.shape(image)
        b, nx, ny, nz = shape[0], shape[1], shape[2], shape[3]
        # [B, X, Y, Z, M] -> [B*Z, X, Y, M]: each slice along Z is an independent sample.
        slices = tf.reshape(tf.transpose(image, [0, 3, 1, 2, 4]),
                            tf.stack([b * nz, nx, ny, NUM_MODALITIES]))
        feats = []
        for i, (conv_1, conv_2) in enumerate(self.backends):
            f = conv_2(conv_1(slices[..., i:i + 1]))
            feats.append(tf.nn.max_pool2d(f, ksize=2, strides=1, padding="SAME"))
        slice_mask = tf.repeat(tf.cast(mask, tf.float32), nz, axis=0)          # [B*Z, M]
        fused = tf.cast(hemis_moments(tf.stack(feats, axis=1), slice_mask), self.compute_dtype)
        logits = self.classifier(self.frontend_conv(fused))                    # [B*Z, X, Y, K]
        logits = tf.reshape(logits, tf.stack([b, nz, nx, ny, self.num_classes]))
        logits = tf.cast(tf.transpose(logits, [0, 2, 3, 1, 4]), tf.float32)
        logits.set_shape([image.shape[0], image.shape[1], image.shape[2], image.shape[3],
                          self.num_classes])
        return {"seg_logits": logits, "seg_probabilities": tf.nn.softmax(logits, axis=-1)}

    def compute_loss_terms(self, image: Any, labels: Any, mask: Any, available: Any,
                           training: bool) -> dict:
        """The loss terms of one batch: segmentation only ("seg_ce", "seg_dice", "decay").

        Args and Returns: as `HeteroModalModel.compute_loss_terms`.
        """
        logits = self.forward(masked_image(image, available), mask, training)["seg_logits"]
        return self.segmentation_terms(logits, labels)

    def get_config(self) -> dict:
        """The model's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "backend_filters": self.backend_filters,
                "frontend_filters": self.frontend_filters}
