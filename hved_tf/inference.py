"""Whole-volume inference: sliding windows over any predictor, Monte-Carlo z samples, uncertainty.

`sliding_window(predict, volume, window, ...)` is pure: `predict` maps a batch of windows
[B, wx, wy, wz, C] (NumPy) to a dict of arrays [B, wx, wy, wz, K_name], and the result is, per
name, the volume [X, Y, Z, K_name] stitched from the windows. Each window keeps only its interior
(`border` voxels cut from each side: the original's way of hiding the zero-padding effects at a
window's edge); interiors are laid out with a stride of `(1 - overlap)` times their size, the
last one slid back to end at the volume's end; where interiors overlap the outputs are averaged,
with equal weights or a Gaussian centred on each interior (`blend="gaussian"`, sigma 1/8 of the
interior, nnU-Net's choice). The volume is padded with `pad_value` (per channel: the channel's
minimum, i.e. its background) by `border` on each side and at the end wherever the windows
reach past it. A window larger than the padded volume is shrunk to it, kept a multiple of
`multiple` (the network's total pooling factor).

The window: by default the whole cropped volume in one window when it fits a voxel budget
(`InferenceOptions.max_voxels`, 200x200x160: a BraTS brain's box fits; U-HVED with 10 samples
then needs about 5 GB and 20 s on 2 CPU cores), else windows of the training patch with
overlap. The networks use instance normalisation, so a window's statistics shape its output:
the release segmented with windows of 128³-140³ (most of a cropped brain), not its 112³
training patch, and one window over the whole box is the closest to that at the lowest cost
(18 windows of 112³ at overlap 0.5 take five times as long).

`ModelPredictor(model, num_samples).for_mask(mask)` turns one of our models into such a
predictor (one traced function serves every mask): for
U-HVED the encoders run once per window, the segmentation decoder sees `num_samples` draws of
the latents and their softmax is averaged ("probabilities"), the per-voxel variance across the
draws is kept ("variance"), and the four reconstructions come from the posterior mean ("recon").

`segment(model, image, mask, ...)` runs both on a preprocessed volume and adds the labels
(argmax) and the entropy of the mean probabilities (nats; `entropy`).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time

import numpy as np
import tensorflow as tf

from hved_tf.modalities import subset_code
from hved_tf.models.hved import UHVED
from hved_tf.models.unet import SubsetUNet

BLENDS = ("constant", "gaussian")
GAUSSIAN_SIGMA = 1.0 / 8.0
GAUSSIAN_FLOOR = 1e-3        # weight at an interior's corner relative to its centre, at least


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    window: tuple          # window size per axis
    border: int            # voxels cut from each side of a window
    starts: tuple          # per axis: the interior starts, in volume coordinates
    pad_after: tuple       # padding at the end of each axis (after `border`)

    @property
    def interior(self):
        return tuple(w - 2 * self.border for w in self.window)

    @property
    def count(self):
        return int(np.prod([len(s) for s in self.starts]))


def _axis_starts(size, interior, overlap):
    if size <= interior:
        return [0]
    stride = max(1, int(math.floor(interior * (1.0 - overlap))))
    starts = list(range(0, size - interior, stride))
    starts.append(size - interior)
    return sorted(set(starts))


def plan_windows(shape, window, border=0, overlap=0.0, multiple=1):
    """Window positions covering a volume of spatial `shape`; see the module docstring."""
    shape = tuple(int(s) for s in shape)
    window = tuple(int(w) for w in window)
    if len(shape) != 3 or len(window) != 3:
        raise ValueError(f"shape and window take three sizes, got {shape} and {window}.")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}.")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}.")
    if any(w % multiple for w in window):
        raise ValueError(f"The window {window} must be a multiple of {multiple} on each axis "
                         "(the network pools that much).")
    fitted = []
    for s, w in zip(shape, window):
        needed = int(math.ceil((s + 2 * border) / multiple) * multiple)
        fitted.append(min(w, needed))
    if any(w <= 2 * border for w in fitted):
        raise ValueError(f"A window of {window} leaves nothing inside a border of {border} "
                         "voxels; use a larger window or a smaller border.")
    interior = [w - 2 * border for w in fitted]
    starts = tuple(tuple(_axis_starts(s, i, overlap)) for s, i in zip(shape, interior))
    pad_after = tuple(max(0, st[-1] + i - s) for st, i, s in zip(starts, interior, shape))
    return WindowPlan(tuple(fitted), int(border), starts, pad_after)


def blend_weights(interior, blend="constant"):
    """Weights [x, y, z] of an interior's voxels, maximum 1."""
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}.")
    if blend == "constant":
        return np.ones(interior, np.float32)
    axes = []
    for n in interior:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        sigma = max(n * GAUSSIAN_SIGMA, 1e-6)
        axes.append(np.exp(-0.5 * (x / sigma) ** 2))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return np.maximum(w / w.max(), GAUSSIAN_FLOOR).astype(np.float32)


def _pad(volume, plan, pad_value):
    b = plan.border
    pads = [(b, b + a) for a in plan.pad_after]
    if not any(p for pair in pads for p in pair):
        return volume
    pad_value = np.broadcast_to(np.asarray(pad_value, np.float32), volume.shape[-1:])
    out = np.empty(tuple(s + p + q for s, (p, q) in zip(volume.shape[:3], pads))
                   + volume.shape[3:], np.float32)
    out[...] = pad_value
    out[tuple(slice(p, p + s) for s, (p, _) in zip(volume.shape[:3], pads))] = volume
    return out


def sliding_window(predict, volume, window, border=0, overlap=0.0, blend="constant",
                   batch_size=1, pad_value=0.0, multiple=1, progress=None):
    """{name: [X, Y, Z, K]} stitched from `predict` over windows of `volume` [X, Y, Z, C]."""
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise ValueError(f"volume must be [X, Y, Z, C], got shape {volume.shape}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    shape = volume.shape[:3]
    plan = plan_windows(shape, window, border, overlap, multiple)
    padded = _pad(volume, plan, pad_value)
    interior, b = plan.interior, plan.border
    weights = blend_weights(interior, blend)
    sums, total = {}, np.zeros(shape, np.float32)
    corners = list(itertools.product(*plan.starts))

    def flush(batch_corners):
        windows = np.stack([padded[tuple(slice(c, c + w) for c, w in zip(corner, plan.window))]
                            for corner in batch_corners]).astype(np.float32, copy=False)
        outputs = predict(windows)
        for k, corner in enumerate(batch_corners):
            dst = tuple(slice(c, min(c + i, s)) for c, i, s in zip(corner, interior, shape))
            extent = tuple(d.stop - d.start for d in dst)
            src = tuple(slice(b, b + e) for e in extent)
            w = weights[tuple(slice(0, e) for e in extent)]
            for name, value in outputs.items():
                value = np.asarray(value[k])
                if name not in sums:
                    sums[name] = np.zeros(shape + value.shape[3:], np.float32)
                sums[name][dst] += value[src] * w[..., None]
            total[dst] += w

    for first in range(0, len(corners), batch_size):
        flush(corners[first:first + batch_size])
        if progress is not None:
            progress(min(first + batch_size, len(corners)), len(corners))
    return {name: value / total[..., None] for name, value in sums.items()}


def entropy(probabilities, axis=-1):
    """Shannon entropy (nats) of probability vectors along `axis`."""
    p = np.asarray(probabilities, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis).astype(np.float32)


def model_multiple(model):
    """The factor every spatial size must be a multiple of (the network's total pooling)."""
    return 2 ** (int(getattr(model, "levels", 1)) - 1)


def check_model_mask(model, mask):
    """A SubsetUNet runs only on its own subset: say so before any work."""
    if isinstance(model, SubsetUNet):
        asked = subset_code(np.flatnonzero(np.asarray(mask) > 0))
        if asked != model.subset:
            raise ValueError(
                f"This U-Net was trained on {model.subset} and runs only on those modalities; "
                f"the input has {asked}. Use a u_hved or u_hemis model for other subsets, or "
                "give exactly its modalities.")


class ModelPredictor:
    """One traced forward of a model, for any mask: `predictor.for_mask(mask)` is a predictor
    for `sliding_window`, mapping windows [B, x, y, z, 4] to {"probabilities", ["variance"],
    ["recon"]} (NumPy).

    U-HVED gives the mean of `num_samples` draws of the segmentation, their variance when
    `num_samples` > 1, and (if `synthesise`) the four reconstructions from the posterior mean;
    the other models give the probabilities only. The draws are stateless (`UHVED.infer`):
    every window of every run uses the same noise for a given `seed`, so results repeat.
    """

    def __init__(self, model, num_samples=10, synthesise=True, seed=0):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}.")
        self.model, self.num_samples = model, num_samples
        self.hved = isinstance(model, UHVED)
        self.synthesise = bool(synthesise) and self.hved

        @tf.function(reduce_retracing=True)
        def forward(image, masks):
            out = model.infer({"image": image, "mask": masks}, num_samples=num_samples,
                              seed=seed)
            result = {"probabilities": out["seg_probabilities"]}
            if self.hved and num_samples > 1:
                result["variance"] = out["seg_variance"]
            if self.synthesise:
                result["recon"] = out["recon"]
            return result

        self._forward = forward

    def for_mask(self, mask):
        mask = np.asarray(mask, np.float32).reshape(-1)
        check_model_mask(self.model, mask)

        def predict(windows):
            masks = np.repeat(mask[None], len(windows), axis=0)
            out = self._forward(tf.constant(windows), tf.constant(masks))
            return {k: v.numpy() for k, v in out.items()}

        return predict


WHOLE_VOLUME_MAX_VOXELS = 200 * 200 * 160   # u_hved with 10 samples: about 5 GB, 20 s on 2 cores


@dataclasses.dataclass
class InferenceOptions:
    """Sliding-window settings. `window=None` ("auto"): the whole volume in one window when it
    holds at most `max_voxels` voxels (once padded to the network's multiple), else windows of
    `fallback_window` (the training patch)."""
    window: tuple | None = None
    border: int = 0
    overlap: float = 0.5
    blend: str = "gaussian"
    batch_size: int = 1
    num_samples: int = 10
    max_voxels: int = WHOLE_VOLUME_MAX_VOXELS
    fallback_window: tuple = (112, 112, 112)


def choose_window(shape, options, multiple):
    """The window `segment` uses for a volume of spatial `shape` (see `InferenceOptions`)."""
    if options.window is not None:
        return tuple(options.window)
    whole = tuple(int(math.ceil((s + 2 * options.border) / multiple) * multiple)
                  for s in shape)
    if int(np.prod(whole)) <= options.max_voxels:
        return whole
    return tuple(options.fallback_window)


def segment(model, image, mask, options=InferenceOptions(), pad_value=None, synthesise=True,
            progress=None, predictor=None):
    """Runs `model` over a preprocessed volume [X, Y, Z, 4] with the modalities of `mask`
    (`predictor`: a `ModelPredictor` of the model to reuse, else one is made).

    Returns {"labels" [X, Y, Z] uint8 (training classes), "probabilities" [..., C], "entropy"
    [X, Y, Z], "variance" [X, Y, Z] (U-HVED with samples > 1), "recon" [..., 4] (U-HVED),
    "seconds", "window"}.
    """
    image = np.asarray(image, np.float32)
    if pad_value is None:
        pad_value = image.reshape(-1, image.shape[-1]).min(0)
    start = time.perf_counter()
    predictor = predictor or ModelPredictor(model, options.num_samples, synthesise)
    multiple = model_multiple(model)
    window = choose_window(image.shape[:3], options, multiple)
    out = sliding_window(predictor.for_mask(mask), image, window, options.border,
                         options.overlap, options.blend, options.batch_size, pad_value, multiple,
                         progress)
    probs = out["probabilities"]
    result = {"probabilities": probs, "labels": np.argmax(probs, axis=-1).astype(np.uint8),
              "entropy": entropy(probs)}
    if "variance" in out:
        result["variance"] = out["variance"][..., 0]
    if "recon" in out:
        result["recon"] = out["recon"]
    result["seconds"] = time.perf_counter() - start
    result["window"] = window
    return result
