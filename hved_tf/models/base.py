"""What every hved_tf model shares: the call contract, its checks, and the training step.

Call contract: ``model({"image": x, "mask": m}, training=...)``, x float [B, X, Y, Z, 4] in the
order T1, T1c, T2, FLAIR, m float [B, 4] with 1 for a present modality; returns a dict with at
least "seg_logits" [B, X, Y, Z, 4] (float32).

Training data: ``({"image": x, "available": a}, labels)`` with `available` [B, 4] (optional,
default all ones) marking the modalities the subject really has, labels [B, X, Y, Z, 1] or
[B, X, Y, Z] in 0..3. The step draws one subset per sample among the available modalities with TF
random ops (no host feed), computes the loss terms of the model, divides the loss by the number
of replicas (Keras 3 sums gradients across replicas in a custom step) and applies Adam.
"""
from __future__ import annotations

import dataclasses
import zlib

import keras
import numpy as np
import tensorflow as tf

from hved_tf import losses as losses_lib
from hved_tf.modalities import (NUM_CLASSES, NUM_MODALITIES, subset_code,
                                validate_subset_probabilities)
from hved_tf.models.subsets import all_present, draw_subset_masks

MIN_SPATIAL = 8
LOSS_TERMS = ("loss", "seg_dice", "seg_ce", "kl", "recon", "decay")


def check_inputs(inputs, model_name="model"):
    """Validates the call contract; returns (image, mask) tensors.

    Raises ValueError for anything that can be checked at trace time, and for an all-zero mask
    row when running eagerly; in a graph an all-zero row fails with InvalidArgumentError.
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


def masked_image(image, mask):
    """Zeroes the channels of absent modalities. image [B, ..., M], mask [B, M]."""
    m = tf.cast(mask, image.dtype)
    return image * tf.reshape(m, tf.concat([tf.shape(m)[:1], tf.ones([3], tf.int32),
                                            tf.shape(m)[1:]], 0))


def total_pooling(levels):
    """The factor by which a U-Net of `levels` resolution levels pools each axis (every
    spatial size it is given must divide into it)."""
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

    def refuses(self, mask):
        """A user-facing reason why the mask [4] cannot be run, or None."""
        if self.subset is None:
            return None
        asked = subset_code(np.flatnonzero(np.asarray(mask) > 0))
        if asked == self.subset:
            return None
        return (f"This U-Net was trained on {self.subset} and runs only on those modalities; "
                f"the input has {asked}. Use a u_hved or u_hemis model for other subsets, or "
                "give exactly its modalities.")


class HeteroModalModel(keras.Model):
    """Base of the hved_tf models: input checks, subset drawing, train/test steps."""

    kind: str | None = None     # the registry name ("u_hved", ...): `hved_tf.models.MODELS`
    # Loss terms this model reports; subclasses narrow it.
    loss_terms: tuple[str, ...] = LOSS_TERMS
    synthesises = False
    latent_samples = False
    built: bool                 # Keras' own flag (set by keras.Layer), declared for the checker

    def __init__(self, num_classes=NUM_CLASSES, loss_weights=None, subset_probabilities=None,
                 dice_numerator_epsilon=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes!r}.")
        weights = loss_weights or {}
        if isinstance(weights, losses_lib.LossWeights):
            weights = dict(vars(weights))
        try:
            self.loss_weights_ = losses_lib.LossWeights(**weights).validate()
        except TypeError as err:
            raise ValueError(f"Unknown loss weight in {weights!r}: {err}") from None
        self.subset_probabilities = (
            None if subset_probabilities is None
            else validate_subset_probabilities(subset_probabilities).tolist())
        self.dice_numerator_epsilon = float(dice_numerator_epsilon)
        self.seed = seed
        self.subset_seed = keras.random.SeedGenerator(seed, name="subset_seed")
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_terms}

    @property
    def capabilities(self):
        return Capabilities(subset=getattr(self, "subset", None), synthesises=self.synthesises,
                            latent_samples=self.latent_samples,
                            multiple=total_pooling(getattr(self, "levels", 1)))

    # ------------------------------------------------------------------ keras plumbing
    @property
    def metrics(self):
        return list(self._trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 (3.15) workaround: under a tf.distribute strategy, `fit` first reduces a whole
        # data batch across replicas (`strategy.reduce("MEAN", batch)`) to build the model
        # symbolically; MultiWorkerMirroredStrategy cannot reduce our dict of inputs and fails.
        # Our models are built when made (no compiled loss or metrics), so only the optimizer's
        # variables remain to create, and they need no data. Without a strategy Keras would
        # leave them to the first step's trace, and a tf.function that creates variables is
        # traced twice: U-HVED's training would start about 16 s later on 2 CPU cores.
        if self.built:
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch=None)
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def build(self, input_shape=None):
        """Creates every weight by running the network once on a small input."""
        if self.built:
            return
        size = 2 ** (getattr(self, "levels", 4) - 1) * 2
        image = tf.zeros((1, size, size, size, NUM_MODALITIES))
        self.forward(image, tf.ones((1, NUM_MODALITIES)), training=False)
        self.built = True
        self.seed_weights()

    def seed_weights(self):
        """With a seed, draws every kernel again from a generator keyed by (seed, variable path).

        NiftyNet's initialiser (normal, stddev sqrt(2 / fan_in), truncated at 2 stddev); the
        same seed gives the same weights whatever the order layers were built in.
        """
        if self.seed is None:
            return
        for var in self.trainable_weights:
            if not var.path.endswith("kernel"):
                continue
            local = var.path.split("/", 1)[-1]          # without the model's own name
            rng = np.random.default_rng([int(self.seed), zlib.crc32(local.encode())])
            shape = tuple(var.shape)
            std = np.sqrt(2.0 / max(int(np.prod(shape[:-1])), 1))
            values = rng.normal(0.0, 1.0, shape)
            bad = np.abs(values) > 2
            while bad.any():
                values[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
                bad = np.abs(values) > 2
            var.assign((values * std).astype(var.dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "loss_weights": dict(vars(self.loss_weights_)),
                "subset_probabilities": self.subset_probabilities,
                "dice_numerator_epsilon": self.dice_numerator_epsilon, "seed": self.seed}

    # ------------------------------------------------------------------ contract
    def call(self, inputs, training=None):
        image, mask = check_inputs(inputs, self.name)
        return self.forward(image, mask, training=training)

    def forward(self, image, mask, training=None):
        raise NotImplementedError

    def infer(self, inputs, num_samples=1, seed=0, single_draw=False, synthesise=True):
        """Inference outputs {"seg_probabilities", ...} (see UHVED.infer; models without a
        latent sample give their probabilities whatever `num_samples` and `single_draw`)."""
        image, mask = check_inputs(inputs, self.name)
        return {"seg_probabilities": self.forward(image, mask, training=False)[
            "seg_probabilities"]}

    def compute_loss_terms(self, image, labels, mask, available, training):
        """Dict of float32 scalars: every name of `loss_terms` but "loss"."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    def draw_masks(self, available):
        """One subset per sample among the available modalities, [B, 4] float32."""
        return draw_subset_masks(available, self.subset_seed, self.subset_probabilities)

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if not isinstance(x, dict) or "image" not in x:
            raise ValueError("Training data must be ({'image': [B, X, Y, Z, 4], 'available': "
                             "[B, 4] (optional)}, labels [B, X, Y, Z, 1]).")
        if y is None:
            raise ValueError("Training data has no labels.")
        image = tf.convert_to_tensor(x["image"])
        available = x.get("available")
        available = (all_present(tf.shape(image)[0]) if available is None
                     else tf.cast(available, tf.float32))
        return image, available, y

    def _terms(self, data, training):
        image, available, labels = self._unpack(data)
        mask = self.draw_masks(available)
        terms = self.compute_loss_terms(image, labels, mask, available, training=training)
        terms["loss"] = losses_lib.total_loss(terms, self.loss_weights_)
        return terms

    def train_step(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            terms = self._terms(data, training=True)
            loss = terms["loss"] / float(replicas)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self._update_trackers(terms)

    def test_step(self, data):
        return self._update_trackers(self._terms(data, training=False))

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])
        logs = {name: tracker.result() for name, tracker in self._trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 (3.15) workaround: across workers it reduces each log with
            # `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar. Shape [1]
            # reduces to the same mean, and Keras turns it into a float.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def default_optimizer(self, learning_rate=1e-3, ema_momentum=0.0):
        """Adam with TF1's epsilon (1e-8), as the release trained (the lr may be a schedule);
        with `ema_momentum` > 0 it also keeps a moving average of the weights (Keras's
        use_ema; hved_tf.training.averaging swaps it in for validation)."""
        if ema_momentum:
            return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8,
                                         use_ema=True, ema_momentum=ema_momentum)
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)

    def segmentation_terms(self, logits, labels):
        """The release's segmentation loss terms and the weight decay of this model."""
        return {**losses_lib.segmentation_terms(logits, labels, self.dice_numerator_epsilon),
                "decay": losses_lib.weight_decay(self, scale=self.loss_weights_.decay_scale)}
