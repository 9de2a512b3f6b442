"""What every hved_tf model shares: the base class and the training step (the call contract,
its checks and the capabilities: `hved_tf.models.contract`).

Training data: ``({"image": x, "available": a}, labels)`` with `available` [B, 4] (optional,
default all ones) marking the modalities the subject really has, labels [B, X, Y, Z, 1] or
[B, X, Y, Z] in 0..3. The step draws one subset per sample among the available modalities with TF
random ops (no host feed), computes the loss terms of the model, divides the loss by the number
of replicas (Keras 3 sums gradients across replicas in a custom step) and applies Adam.
"""
from __future__ import annotations

import zlib

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hved_tf import losses as losses_lib
from hved_tf.modalities import NUM_CLASSES, NUM_MODALITIES, validate_subset_probabilities
from hved_tf.models.contract import Capabilities, check_inputs, total_pooling
from hved_tf.models.subsets import all_present, draw_subset_masks

LOSS_TERMS = ("loss", "seg_dice", "seg_ce", "kl", "recon", "decay")


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
    def capabilities(self) -> Capabilities:
        """What the model can do (`hved_tf.models.contract.Capabilities`)."""
        return Capabilities(subset=getattr(self, "subset", None), synthesises=self.synthesises,
                            latent_samples=self.latent_samples,
                            multiple=total_pooling(getattr(self, "levels", 1)))

    # ------------------------------------------------------------------ keras plumbing
    @property
    def metrics(self) -> list:
        """The loss trackers Keras resets each epoch."""
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

    def build(self, input_shape: Any = None) -> None:
        """Creates every weight by running the network once on a small input.

        Args:
            input_shape: unused (any size divisible by the pooling factor runs).
        """
        if self.built:
            return
        size = 2 ** (getattr(self, "levels", 4) - 1) * 2
        image = tf.zeros((1, size, size, size, NUM_MODALITIES))
        self.forward(image, tf.ones((1, NUM_MODALITIES)), training=False)
        self.built = True
        self.seed_weights()

    def seed_weights(self) -> None:
        """With a seed, draws every kernel again from a generator keyed by (seed, variable
        path): NiftyNet's initialiser (normal, stddev sqrt(2 / fan_in), truncated at 2 stddev);
        the same seed gives the same weights whatever the order layers were built in."""
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

    def get_config(self) -> dict:
        """The model's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "num_classes": self.num_classes,
                "loss_weights": dict(vars(self.loss_weights_)),
                "subset_probabilities": self.subset_probabilities,
                "dice_numerator_epsilon": self.dice_numerator_epsilon, "seed": self.seed}

    # ------------------------------------------------------------------ contract
    def call(self, inputs: dict, training: bool | None = None) -> dict:
        """The model on {"image", "mask"}, checked against the call contract.

        Args:
            inputs: {"image": [B, X, Y, Z, 4], "mask": [B, 4]}.
            training: Keras' flag.

        Returns:
            `forward`'s outputs.
        """
        image, mask = check_inputs(inputs, self.name)
        return self.forward(image, mask, training=training)

    def forward(self, image: Any, mask: Any, training: bool | None = None) -> dict:
        """The model's outputs (each model's own).

        Args:
            image: [B, X, Y, Z, 4].
            mask: [B, 4].
            training: Keras' flag.

        Returns:
            At least {"seg_logits", "seg_probabilities"}.
        """
        raise NotImplementedError

    def infer(self, inputs: dict, num_samples: Any = 1, seed: Any = 0,
              single_draw: bool = False, synthesise: bool = True) -> dict:
        """Inference outputs (see UHVED.infer; models without a latent sample give their
        probabilities whatever `num_samples` and `single_draw`).

        Args:
            inputs: {"image", "mask"}.
            num_samples: of UHVED.infer.
            seed: of UHVED.infer.
            single_draw: of UHVED.infer.
            synthesise: of UHVED.infer.

        Returns:
            {"seg_probabilities", ...}.
        """
        image, mask = check_inputs(inputs, self.name)
        return {"seg_probabilities": self.forward(image, mask, training=False)[
            "seg_probabilities"]}

    def compute_loss_terms(self, image: Any, labels: Any, mask: Any, available: Any,
                           training: bool) -> dict:
        """The loss terms of one batch (each model's own).

        Args:
            image: [B, X, Y, Z, 4].
            labels: [B, X, Y, Z(, 1)].
            mask: [B, 4], the drawn subsets.
            available: [B, 4], the modalities each subject has.
            training: Keras' flag.

        Returns:
            float32 scalars: every name of `loss_terms` but "loss".
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    def draw_masks(self, available: Any) -> Any:
        """One subset per sample among the available modalities.

        Args:
            available: [B, 4].

        Returns:
            float32 [B, 4].
        """
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

    def train_step(self, data: Any) -> dict:
        """One optimiser step (Keras' `fit`): a subset drawn per sample, the loss divided by
        the replicas, Adam.

        Args:
            data: ({"image", "available" (optional)}, labels).

        Returns:
            The loss trackers' values.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            terms = self._terms(data, training=True)
            loss = terms["loss"] / float(replicas)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self._update_trackers(terms)

    def test_step(self, data: Any) -> dict:
        """The loss terms of a batch, without a step (Keras' `evaluate`).

        Args:
            data: ({"image", "available" (optional)}, labels).

        Returns:
            The loss trackers' values.
        """
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

    def default_optimizer(self, learning_rate: Any = 1e-3, ema_momentum: float = 0.0) -> Any:
        """The release's optimiser.

        Args:
            learning_rate: a rate or a schedule.
            ema_momentum: > 0: also keep a moving average of the weights (Keras' use_ema;
                hved_tf.training.averaging swaps it in for validation).

        Returns:
            Adam with TF1's epsilon (1e-8).
        """
        if ema_momentum:
            return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8,
                                         use_ema=True, ema_momentum=ema_momentum)
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)

    def segmentation_terms(self, logits: Any, labels: Any) -> dict:
        """The release's segmentation loss terms and the weight decay of this model.

        Args:
            logits: [B, X, Y, Z, classes].
            labels: [B, X, Y, Z(, 1)].

        Returns:
            {"seg_ce", "seg_dice", "decay"}.
        """
        return {**losses_lib.segmentation_terms(logits, labels, self.dice_numerator_epsilon),
                "decay": losses_lib.weight_decay(self, scale=self.loss_weights_.decay_scale)}
