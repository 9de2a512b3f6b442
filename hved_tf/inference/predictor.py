"""One of our models as a window predictor for `sliding_window`, with Monte-Carlo z samples.

`ModelPredictor(model, num_samples).for_mask(mask)` maps windows [B, x, y, z, 4] (NumPy) to
{"probabilities", ["variance"], ["recon"]} (NumPy); one traced function serves every mask. What
it returns follows the model's capabilities, not its class: a model that draws latents gives the
mean of `num_samples` draws of the segmentation and, when more than one, their variance
(`UHVED.infer`: the encoders once, stateless draws keyed by (seed, sample, level), so every
window of every run uses the same noise for a given `seed`); a model that synthesises gives the
four reconstructions from the posterior mean (if `synthesise`); the others the probabilities.
With `tta_axes`, every window is also mirrored along those axes and the probabilities averaged
(`hved_tf.inference.tta`; the variance then includes the spread over the flips).

`synthesise`: True (the four sequences), "missing" (only for a mask with a missing modality:
with all four present the image decoders are skipped, 4 of U-HVED's 14 full-size decoder passes
at 10 z samples), or False.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from hved_tf.inference.tta import with_flips


class ModelPredictor:
    """A model as a predictor of windows (see the module docstring): z samples averaged,
    mirror flips with `tta_axes`, sequences synthesised as `synthesise` says."""

    def __init__(self, model, num_samples=10, synthesise=True, seed=0, single_draw=False,
                 tta_axes=()):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}.")
        self.model, self.num_samples = model, num_samples
        capabilities = model.capabilities
        self.capabilities = capabilities
        if synthesise not in (True, False, "missing"):
            raise ValueError(f"synthesise must be True, False or 'missing', got {synthesise!r}.")
        self.variance = (capabilities.latent_samples and num_samples > 1) or bool(tta_axes)
        self.synthesise = synthesise if capabilities.synthesises else False

        def once(image, masks, recon):
            out = model.infer({"image": image, "mask": masks}, num_samples=num_samples,
                              seed=seed, single_draw=single_draw, synthesise=recon)
            probs = out["seg_probabilities"]
            return (probs, out.get("seg_variance", tf.zeros_like(probs[..., :1])),
                    out["recon"] if recon else tf.zeros_like(image[..., :1]))

        @tf.function(reduce_retracing=True)
        def forward(image, masks, recon):           # recon: a Python bool (one trace each)
            probs, variance, images = with_flips(lambda x: once(x, masks, recon), image,
                                                 tta_axes)
            result = {"probabilities": probs}
            if self.variance:
                result["variance"] = variance
            if recon:
                result["recon"] = images
            return result

        self._forward = forward

    def synthesises_for(self, mask: np.ndarray) -> bool:
        """Whether the sequences are synthesised for a mask.

        Args:
            mask: [4], the sequences given.

        Returns:
            True when they are.
        """
        if self.synthesise == "missing":
            return bool((np.asarray(mask).reshape(-1) <= 0).any())
        return bool(self.synthesise)

    def for_mask(self, mask: np.ndarray) -> Callable:
        """The window predictor of one modality mask.

        Args:
            mask: [4], the sequences given.

        Returns:
            `predict(windows [n, x, y, z, 4])` -> {"probabilities", "variance"?, "recon"?}.

        Raises:
            ValueError: the model cannot run the mask.
        """
        mask = np.asarray(mask, np.float32).reshape(-1)
        reason = self.capabilities.refuses(mask)
        if reason:
            raise ValueError(reason)
        recon = self.synthesises_for(mask)

        def predict(windows):
            masks = np.repeat(mask[None], len(windows), axis=0)
            out = self._forward(tf.constant(windows), tf.constant(masks), recon)
            return {k: v.numpy() for k, v in out.items()}

        return predict
