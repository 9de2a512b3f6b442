"""The call contract of every hved_tf model, its checks, and what a model can do.

Call contract: ``model({"image": x, "mask": m}, training=...)``, x float [B, X, Y, Z, 4] in the
order T1, T1c, T2, FLAIR, m float [B, 4] with 1 for a present modality; returns a dict with at
least "seg_logits" [B, X, Y, Z, 4] (float32). `check_inputs` refuses anything else, naming the
model; `Capabilities` is what consumers read instead of a model's class.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from hved_tf.modalities import NUM_MODALITIES, subset_code

MIN_SPATIAL = 8


def check_inputs(inputs: Any, model_name: str = "model") -> tuple[Any, Any]:
    """Checks a model's inputs against the call contract (in a graph, an all-zero mask row
    fails with InvalidArgumentError instead).

    Args:
        inputs: {"image": [B, X, Y, Z, 4] float, "mask": [B, 4] float}.
        model_name: for messages.

    Returns:
        (image, mask) tensors, the mask float32.

    Raises:
        ValueError: anything that can be checked at trace time, and an all-zero mask row when
            running eagerly.
    """
    if not isinstance(inputs, dict) or "image" not in inputs or "mask" not in inputs:
        given = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(
            f"{model_name} expects a dict with keys 'image' [B, X, Y, Z, {NUM_MODALITIES}] and "
            f"'mask' [B, {NUM_MODALITIES}]; got {given}.")
    image, mask = inputs["image"], inputs["mask"]
    for key, value in (("image", image), ("mask", mask)):
        dtype = tf.as_dtype(value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype)
        if not dtype.is_floating:
            raise ValueError(f"{model_name}: '{key}' must be a float tensor, got dtype {dtype.name}.")
    image = tf.convert_to_tensor(image)
    mask = tf.cast(tf.convert_to_tensor(mask), tf.float32)
    if len(image.shape) != 5 or image.shape[-1] != NUM_MODALITIES:
        raise ValueError(
            f"{model_name}: 'image' must have shape [B, X, Y, Z, {NUM_MODALITIES}] (channels T1, "
            f"T1c, T2, FLAIR; missing ones may be zeros), got {tuple(image.shape)}.")
    small = [d for d in image.shape[1:4] if d is not None and d < MIN_SPATIAL]
    if small:
        raise ValueError(
            f"{model_name}: every spatial dimension must be at least {MIN_SPATIAL} voxels, got "
            f"{tuple(image.shape[1:4])}.")
    if len(mask.shape) != 2 or mask.shape[-1] != NUM_MODALITIES:
        raise ValueError(
            f"{model_name}: 'mask' must have shape [B, {NUM_MODALITIES}] (1 = modality present), "
            f"got {tuple(mask.shape)}.")
    if (image.shape[0] is not None and mask.shape[0] is not None
            and image.shape[0] != mask.shape[0]):
        raise ValueError(f"{model_name}: 'image' has batch {image.shape[0]} but 'mask' has "
                         f"batch {mask.shape[0]}.")
    present = tf.reduce_sum(tf.cast(mask > 0, tf.int32), axis=-1)
    if tf.executing_eagerly():
        empty = np.flatnonzero(present.numpy() == 0)
        if empty.size:
            raise ValueError(
                f"{model_name}: the mask of sample(s) {empty.tolist()} has no modality present; "
                "at least one of T1, T1c, T2, FLAIR is needed.")
    else:
        tf.debugging.assert_greater(
            present, 0, message=f"{model_name}: a mask row has no modality present; at least "
                                "one of T1, T1c, T2, FLAIR is needed.")
    if any(d is None for d in image.shape[1:4]):
        tf.debugging.assert_greater_equal(
            tf.reduce_min(tf.shape(image)[1:4]), MIN_SPATIAL,
            message=f"{model_name}: every spatial dimension must be at least {MIN_SPATIAL}.")
    return image, mask


def masked_image(image: Any, mask: Any) -> Any:
    """An image with the channels of absent modalities zeroed.

    Args:
        image: [B, X, Y, Z, M].
        mask: [B, M].

    Returns:
        image * mask, in image's dtype.
    """
    m = tf.cast(mask, image.dtype)
    return image * tf.reshape(m, tf.concat([tf.shape(m)[:1], tf.ones([3], tf.int32),
                                            tf.shape(m)[1:]], 0))


def total_pooling(levels: int) -> int:
    """How much a U-Net pools each axis (every spatial size it is given must divide into it).

    Args:
        levels: its resolution levels.

    Returns:
        2 ** (levels - 1).
    """
    return 2 ** (int(levels) - 1)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model can do, read by inference, callbacks, evaluation and export instead of its
    class: `subset` the only modality subset it runs on (None: any), `synthesises` whether it
    decodes the four sequences, `latent_samples` whether it draws z (Monte-Carlo samples and
    their variance mean something), `multiple` the factor every spatial size must divide into
    (its total pooling)."""
    subset: str | None = None
    synthesises: bool = False
    latent_samples: bool = False
    multiple: int = 1

    def refuses(self, mask: Any) -> str | None:
        """Why a model cannot run a modality mask.

        Args:
            mask: [4], the sequences given.

        Returns:
            A user-facing reason, or None when it can.
        """
        if self.subset is None:
            return None
        asked = subset_code(np.flatnonzero(np.asarray(mask) > 0))
        if asked == self.subset:
            return None
        return (f"This U-Net was trained on {self.subset} and runs only on those modalities; "
                f"the input has {asked}. Use a u_hved or u_hemis model for other subsets, or "
                "give exactly its modalities.")
