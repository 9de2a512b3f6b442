"""U-HVED (Dorent et al., MICCAI 2019), as released (docs/explanation/design.md).

Four encoders (no weight sharing), a product-of-Gaussians fusion per scale, five decoders
(T1, T1c, T2, FLAIR and the segmentation), all fed the same fused latents.

Inference (`call`): the encoders run once; the segmentation decoder sees `num_samples` draws of
the latents (`z_mode="sample"`, from the fusion layers' seed generators) and its softmax is
averaged, or sees the posterior mean (`z_mode="mean"`); the reconstructions come from the
posterior mean unless `recon_z="sample"`.

`infer` is the inference entry point of `hved_tf.inference` and of the export: stateless draws
(repeatable), a sample count that may be a tensor, and the variance across the draws.

Training (`compute_loss_terms`), as the release: one draw feeds all five decoders. The encoders
run on the image of every modality the subject has (`available`); the drawn subset enters only
through the fusion mask, so a dropped modality reaches no decoder (its precision is multiplied
by 0: outputs and gradients are those of a zeroed input) while the release's "original" KL can
still compare the drawn subset's posterior with those of all other subsets, which needs the
dropped modalities' encodings. Modalities the subject lacks are zeroed and never drawn.
"""
from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from hved_tf import losses as losses_lib
from hved_tf.gaussian import draw_with_scale, standard_deviation
from hved_tf.modalities import MODALITIES, NUM_CLASSES
from hved_tf.models.base import HeteroModalModel
from hved_tf.models.contract import check_inputs, masked_image
from hved_tf.models.blocks import register
from hved_tf.models.decoder import Decoder
from hved_tf.models.encoder import Encoder
from hved_tf.models.fusion import Z_MODES, GaussianFusion, split_moments

RECON_Z = ("mean", "sample")


@register
class UHVED(HeteroModalModel):
    """Hetero-modal variational encoder-decoder."""

    kind = "u_hved"
    synthesises = True
    latent_samples = True

    def __init__(self, base_filters=8, levels=4, num_classes=NUM_CLASSES, kl_variant="original",
                 z_mode="sample", num_samples=1, seed=None, **kwargs):
        super().__init__(num_classes=num_classes, seed=seed, **kwargs)
        if kl_variant not in losses_lib.KL_VARIANTS:
            raise ValueError(f"kl_variant must be one of {losses_lib.KL_VARIANTS}, "
                             f"got {kl_variant!r}.")
        if z_mode not in Z_MODES:
            raise ValueError(f"z_mode must be one of {Z_MODES}, got {z_mode!r}.")
        check_int("base_filters", base_filters, 2)
        check_int("levels", levels, 2)
        check_int("num_samples", num_samples, 1)
        if base_filters % 2:
            raise ValueError(f"base_filters must be even (latents take half the channels), "
                             f"got {base_filters}.")
        self.base_filters, self.levels = int(base_filters), int(levels)
        self.kl_variant, self.z_mode, self.num_samples = kl_variant, z_mode, int(num_samples)
        self.encoders = [Encoder(base_filters, levels, halved=False, name=f"encoder_{m}")
                         for m in MODALITIES]
        self.fusions = [GaussianFusion(seed=None if seed is None else seed + 1 + level,
                                       name=f"fusion_{level + 1}") for level in range(levels)]
        self.image_decoders = [Decoder(base_filters, levels, 1, name=f"decoder_{m}")
                               for m in MODALITIES]
        self.seg_decoder = Decoder(base_filters, levels, num_classes, name="decoder_seg")

    # ------------------------------------------------------------------ pieces
    def encode(self, image: Any, training: bool | None = None) -> list:
        """Each modality's posterior at each scale.

        Args:
            image: [B, X, Y, Z, 4] (masked).
            training: Keras' flag.

        Returns:
            Per level (mean, logvar), each [B, 4, x, y, z, C_l].
        """
        per_modality = [enc(image[..., i:i + 1], training=training)
                        for i, enc in enumerate(self.encoders)]
        levels = []
        for level in range(self.levels):
            stacked = tf.stack([skips[level] for skips in per_modality], axis=1)
            levels.append(split_moments(stacked))
        return levels

    def fuse(self, posteriors: list, mask: Any, mode: str) -> tuple[list, list, list]:
        """The product of the masked modalities' posteriors at each scale.

        Args:
            posteriors: `encode`'s.
            mask: [B, 4].
            mode: "sample" or "mean".

        Returns:
            (z, post_mean, post_logvar), lists over levels.
        """
        out = [fusion(mean, logvar, mask, mode=mode)
               for fusion, (mean, logvar) in zip(self.fusions, posteriors)]
        return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]

    def _decode(self, decoder, latents, training=None):
        return tf.cast(decoder([tf.cast(z, self.compute_dtype) for z in latents],
                               training=training), tf.float32)

    def decode_images(self, latents: list, training: bool | None = None) -> Any:
        """The four sequences decoded from the latents.

        Args:
            latents: one per level.
            training: Keras' flag.

        Returns:
            float32 [B, X, Y, Z, 4], the modalities in order.
        """
        return tf.concat([self._decode(d, latents, training) for d in self.image_decoders],
                         axis=-1)

    # ------------------------------------------------------------------ contract
    def call(self, inputs: dict, training: bool | None = None, z_mode: str | None = None,
             num_samples: int | None = None, recon_z: str = "mean") -> dict:
        """The model on {"image", "mask"} (`forward`).

        Args:
            inputs: {"image": [B, X, Y, Z, 4], "mask": [B, 4]}.
            training: Keras' flag.
            z_mode: of `forward`.
            num_samples: of `forward`.
            recon_z: of `forward`.

        Returns:
            `forward`'s outputs.
        """
        image, mask = check_inputs(inputs, self.name)
        return self.forward(image, mask, training=training, z_mode=z_mode,
                            num_samples=num_samples, recon_z=recon_z)

    def forward(self, image: Any, mask: Any, training: bool | None = None,
                z_mode: str | None = None, num_samples: int | None = None,
                recon_z: str = "mean") -> dict:
        """Segmentation and the four sequences of a masked batch.

        Args:
            image: [B, X, Y, Z, 4].
            mask: [B, 4], the sequences given.
            training: Keras' flag.
            z_mode: "sample" or "mean" (None: the model's).
            num_samples: softmax outputs of that many draws averaged (None: the model's).
            recon_z: the sequences decoded from the posterior "mean" or the drawn "z".

        Returns:
            {"seg_logits", "seg_probabilities", "recon"}, float32.
        """
        z_mode = z_mode or self.z_mode
        num_samples = self.num_samples if num_samples is None else num_samples
        if z_mode not in Z_MODES:
            raise ValueError(f"z_mode must be one of {Z_MODES}, got {z_mode!r}.")
        if recon_z not in RECON_Z:
            raise ValueError(f"recon_z must be one of {RECON_Z}, got {recon_z!r}.")
        check_int("num_samples", num_samples, 1)
        image = masked_image(tf.cast(image, self.compute_dtype), mask)
        zs, means, logvars = self.fuse(self.encode(image), mask, z_mode)
        if z_mode == "mean" or num_samples == 1:
            seg_logits = self._decode(self.seg_decoder, zs)
            seg_probs = tf.nn.softmax(seg_logits, axis=-1)
        else:
            def draw(i):     # the first draw is the fusion's own, then the layers' generators
                latents = zs if i == 0 else [f.sample(m, lv) for f, m, lv
                                             in zip(self.fusions, means, logvars)]
                return tf.nn.softmax(self._decode(self.seg_decoder, latents), axis=-1)

            seg_probs, _ = average_draws(draw, num_samples)
            # Logits whose softmax is the averaged probability.
            seg_logits = tf.math.log(tf.maximum(seg_probs, 1e-30))
        recon = self.decode_images(means if recon_z == "mean" else zs)
        return {"seg_logits": seg_logits, "seg_probabilities": seg_probs, "recon": recon}

    def infer(self, inputs: dict, num_samples: Any = 1, seed: Any = 0,
              single_draw: bool = False, synthesise: bool = True) -> dict:
        """Inference, the encoders run once. Draws are stateless, keyed by (`seed`, sample
        index, level), so an input always gives the same output, here or in an exported
        SavedModel. The reconstructions come from the posterior mean.

        Args:
            inputs: {"image": [B, X, Y, Z, 4], "mask": [B, 4]}.
            num_samples: a Python int or an int32 scalar tensor: 1 decodes the posterior mean;
                more averages the softmax of that many draws of the latents.
            seed: of the draws.
            single_draw: with one sample, a random draw instead of the mean (the release's).
            synthesise: decode the four sequences (else the image decoders are skipped).

        Returns:
            {"seg_probabilities", "seg_variance" (the draws' variance summed over classes),
            "recon" (with `synthesise`)}.
        """
        image, mask = check_inputs(inputs, self.name)
        image = masked_image(tf.cast(image, self.compute_dtype), mask)
        _, means, logvars = self.fuse(self.encode(image), mask, "mean")
        seed = tf.cast(seed, tf.int32)

        def decode_mean():
            probs = tf.nn.softmax(self._decode(self.seg_decoder, means), axis=-1)
            return probs, tf.zeros_like(probs[..., :1])

        scales = [standard_deviation(lv) for lv in logvars]     # once for every draw

        def draw(i):
            latents = [draw_with_scale(m, s, tf.random.stateless_normal(
                tf.shape(m), seed=tf.stack([seed, i * 64 + level]), dtype=m.dtype))
                for level, (m, s) in enumerate(zip(means, scales))]
            return tf.nn.softmax(self._decode(self.seg_decoder, latents), axis=-1)

        if isinstance(num_samples, int):
            check_int("num_samples", num_samples, 1)
            if num_samples == 1 and single_draw:
                probs, variance = average_draws(draw, 1)
            else:
                probs, variance = (average_draws(draw, tf.constant(num_samples))
                                   if num_samples > 1 else decode_mean())
        else:
            n = tf.cast(num_samples, tf.int32)
            probs, variance = tf.cond(n > 1, lambda: average_draws(draw, n), decode_mean)
        out = {"seg_probabilities": probs, "seg_variance": variance}
        if synthesise:
            out["recon"] = self.decode_images(means)
        return out

    # ------------------------------------------------------------------ training
    def compute_loss_terms(self, image: Any, labels: Any, mask: Any, available: Any,
                           training: bool) -> dict:
        """The loss terms of one batch: segmentation on z drawn from the drawn subset's
        posterior, reconstruction of the available sequences, KL.

        Args: as `HeteroModalModel.compute_loss_terms`.

        Returns:
            {"seg_ce", "seg_dice", "recon", "kl"}.
        """
        image = masked_image(tf.cast(image, self.compute_dtype), available)
        posteriors = self.encode(image, training)
        zs, _, _ = self.fuse(posteriors, mask, "sample")
        seg_logits = self._decode(self.seg_decoder, zs, training)
        recon = self.decode_images(zs, training)
        terms = self.segmentation_terms(seg_logits, labels)
        terms["recon"] = losses_lib.reconstruction_loss(recon, image, available)
        terms["kl"] = losses_lib.kl_loss([p[0] for p in posteriors], [p[1] for p in posteriors],
                                         mask, available, variant=self.kl_variant)
        return terms

    def get_config(self) -> dict:
        """The model's config (Keras serialisation).

        Returns:
            Keras' own, with the constructor's arguments.
        """
        return {**super().get_config(), "base_filters": self.base_filters, "levels": self.levels,
                "kl_variant": self.kl_variant, "z_mode": self.z_mode,
                "num_samples": self.num_samples}


def average_draws(draw: Callable, n: Any) -> tuple[Any, Any]:
    """The Monte-Carlo average of `draw(i)` for i in 0..n-1.

    Args:
        draw: `draw(i)` -> probabilities [..., C].
        n: a Python int (a Python loop) or an int32 tensor (a tf.while_loop).

    Returns:
        (mean, variance summed over the last axis, keepdims).
    """
    first = draw(0 if isinstance(n, int) else tf.constant(0))
    if isinstance(n, int):
        total, squares = first, tf.square(first)
        for i in range(1, n):
            probs = draw(i)
            total, squares = total + probs, squares + tf.square(probs)
    else:
        def body(i, total, squares):
            probs = draw(i)
            return i + 1, total + probs, squares + tf.square(probs)

        _, total, squares = tf.while_loop(lambda i, *_: i < n, body,
                                          (tf.constant(1), first, tf.square(first)))
    count = tf.cast(n, tf.float32)
    mean = total / count
    variance = tf.reduce_sum(tf.maximum(squares / count - tf.square(mean), 0.0), axis=-1,
                             keepdims=True)
    return mean, variance


def check_int(name: str, value: Any, minimum: int) -> None:
    """Refuses a model option that is not an integer >= `minimum`.

    Args:
        name: the option.
        value: its value.
        minimum: the smallest allowed.

    Raises:
        ValueError: naming the option.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")

