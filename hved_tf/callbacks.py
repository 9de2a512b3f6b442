"""Keras callbacks of the training application.

- `StopAtStep`: ends training after exactly `steps` optimiser steps (Keras counts epochs; an
  "epoch" here is only the validation cadence, and a resumed run must end where an
  uninterrupted one does).
- `NonFiniteLoss`: raises `NonFiniteLossError` at the first NaN/Inf loss, before the epoch-end
  backup could save the bad weights, so the last good backup stays intact.
- `Validation`: Dice of whole tumour, core and enhancing on held-out subjects with all modalities
  and a list of subsets, TensorBoard scalars and images, the best weights, early stopping.
- `StepCheckpoints`: weights at every validation, the last N kept.
Validation segments a whole volume when it is small enough, else a central window of the patch
size (the sliding-window inference of the predict issue will replace this).
"""
from __future__ import annotations

import logging
import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from hved_tf.data.pipeline import extract_window
from hved_tf.metrics import region_dice
from hved_tf.modalities import MODALITIES, parse_subset, subset_mask
from hved_tf.models.hved import UHVED
from hved_tf.models.unet import SubsetUNet

log = logging.getLogger(__name__)
WHOLE_VOLUME_MAX_VOXELS = 144 ** 3
OVERLAY_COLOURS = {1: (1.0, 0.0, 0.0), 2: (0.0, 1.0, 0.0), 3: (0.0, 0.3, 1.0)}


class NonFiniteLossError(RuntimeError):
    pass


class StopAtStep(keras.callbacks.Callback):
    def __init__(self, steps):
        super().__init__()
        self.steps = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.steps:
            self.model.stop_training = True


class NonFiniteLoss(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            terms = {k: float(v) for k, v in (logs or {}).items()}
            raise NonFiniteLossError(
                f"The loss became {loss} at step {step} ({terms}). Training stopped; the last "
                "backup, from before this epoch, is intact. Lower --learning_rate, check the "
                "data (hist file, intensities), or use --precision=float32.")


def segment_for_validation(predict, subject, mask, patch, multiple):
    """(labels [x, y, z], slices of the volume they cover, recon [x, y, z, 4] or None).

    The whole volume when small enough, else its central patch; sizes rounded up to a multiple
    of the network's total pooling, padded at the end with each channel's minimum.
    """
    image = subject.image
    shape = image.shape[:3]
    if np.prod(shape) <= WHOLE_VOLUME_MAX_VOXELS:
        extent = shape
    else:
        extent = [min(p, s) for p, s in zip(patch, shape)]
    target = [int(math.ceil(e / multiple) * multiple) for e in extent]
    corner = [(s - e) // 2 for s, e in zip(shape, extent)]
    minimum = subject.minimum
    if minimum is None:
        minimum = np.asarray(image).reshape(-1, image.shape[-1]).min(0)
    window = extract_window(image, corner, target, np.asarray(minimum, np.float32))
    probs, recon = predict(window[None].astype(np.float32), mask[None].astype(np.float32))
    inside = tuple(slice(0, e) for e in extent)
    covered = tuple(slice(c, c + e) for c, e in zip(corner, extent))
    labels = np.argmax(probs[0][inside], axis=-1)
    return labels, covered, (recon[0][inside] if recon.size else None)


def _model_multiple(model):
    return 2 ** (getattr(model, "levels", 1) - 1)


def make_predictor(model):
    """predict(image, mask) -> (probabilities, reconstructions or an empty array), NumPy."""
    kwargs = {"z_mode": "mean"} if isinstance(model, UHVED) else {}

    @tf.function(reduce_retracing=True)
    def forward(image, mask):
        out = model({"image": image, "mask": mask}, training=False, **kwargs)
        return tf.nn.softmax(out["seg_logits"], axis=-1), out.get("recon", tf.zeros([0]))

    def predict(image, mask):
        probs, recon = forward(image, mask)
        return probs.numpy(), recon.numpy()

    return predict


def evaluate_subjects(model, subjects, subsets, patch, predict=None):
    """{subset code: {region: mean Dice}} over subjects that have the subset's modalities."""
    predict = predict or make_predictor(model)
    multiple = _model_multiple(model)
    results = {}
    for code in subsets:
        mask = subset_mask(parse_subset(code))
        if isinstance(model, SubsetUNet) and code != model.subset:
            continue
        scores = []
        for subject in subjects:
            if subject.label is None or np.any(mask > subject.available):
                continue
            labels, covered, _ = segment_for_validation(predict, subject, mask, patch, multiple)
            scores.append(region_dice(labels, np.asarray(subject.label)[covered]))
        if scores:
            results[code] = {r: float(np.mean([s[r] for s in scores])) for r in scores[0]}
    return results


def _normalise(slice2d):
    lo, hi = np.percentile(slice2d, [1, 99])
    return np.clip((slice2d - lo) / max(hi - lo, 1e-6), 0, 1)


def overlay(gray, labels, alpha=0.5):
    """RGB [H, W, 3]: labels 1 (red), 2 (green), 3 (blue) over a gray image in [0, 1]."""
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for value, colour in OVERLAY_COLOURS.items():
        where = labels == value
        rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(colour)
    return rgb


def orthogonal_panels(columns, centre):
    """For each plane, the columns ([X, Y, Z] gray or [X, Y, Z, 3] RGB) side by side."""
    panels = {}
    for plane, axis in (("sagittal", 0), ("coronal", 1), ("axial", 2)):
        tiles = []
        for volume in columns:
            tile = np.take(volume, centre[axis], axis=axis)
            tile = np.swapaxes(tile, 0, 1)[::-1]        # rows: the later axis, upwards
            if tile.ndim == 2:
                tile = np.repeat(tile[..., None], 3, axis=-1)
            tiles.append(tile)
        panels[plane] = np.concatenate(tiles, axis=1).astype(np.float32)
    return panels


class Validation(keras.callbacks.Callback):
    """Validation Dice, TensorBoard scalars/images, best weights, early stopping."""

    def __init__(self, subjects, subsets, patch, run_dir, patience=0, image_subset=None):
        super().__init__()
        self.subjects = [s for s in subjects if s.label is not None]
        self.subsets = list(subsets)
        self.patch = tuple(patch)
        self.run_dir = pathlib.Path(run_dir)
        self.patience = int(patience)
        self.image_subset = image_subset or "T1c+FLAIR"
        self.writer = None
        self.predict = None
        self.best = -1.0
        self.wait = 0
        self.history = []

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(str(self.run_dir / "logs" / "eval"))
        self.predict = make_predictor(self.model)     # one traced function for the whole run
        state = self.run_dir / "best.txt"
        if state.is_file():                      # resumed: keep the best score so far
            self.best = float(state.read_text().split()[0])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        step = int(self.model.optimizer.iterations.numpy())
        lr = self.model.optimizer.learning_rate
        lr = float(lr(step) if callable(lr) else lr)
        if not self.subjects:
            return
        results = evaluate_subjects(self.model, self.subjects, self.subsets, self.patch,
                                    self.predict)
        full = results.get(self.subsets[0], {})
        # record_if(True): Keras' TensorBoard callback may leave a step-gated record_if active.
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            tf.summary.scalar("learning_rate", lr)
            for code, regions in results.items():
                for region, value in regions.items():
                    tf.summary.scalar(f"dice/{code}/{region}", value)
            self._images(step)
        self.writer.flush()
        for region, value in full.items():
            logs[f"val_dice_{region}"] = value
        score = float(np.mean(list(full.values()))) if full else -1.0
        line = " | ".join(f"{code}: " + " ".join(f"{r[:5]} {v:.3f}" for r, v in reg.items())
                          for code, reg in results.items())
        print(f"validation at step {step} (lr {lr:.2e}): {line}", flush=True)
        self.history.append({"step": step, **{c: r for c, r in results.items()}})
        if score > self.best:
            self.best, self.wait = score, 0
            tmp = self.run_dir / ".best.partial.weights.h5"
            self.model.save_weights(tmp)
            os.replace(tmp, self.run_dir / "best.weights.h5")
            (self.run_dir / "best.txt").write_text(f"{score} {step}\n")
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                print(f"early stopping: no improvement in {self.wait} validations", flush=True)
                self.model.stop_training = True

    def _images(self, step):
        subject = self.subjects[0]
        label = np.asarray(subject.label)
        image = np.asarray(subject.image)
        if isinstance(self.model, SubsetUNet):
            code = self.model.subset
        else:
            code = self.image_subset
        mask = subset_mask(parse_subset(code)) * subject.available
        if not mask.any():
            mask = subject.available
        labels, covered, recon = segment_for_validation(self.predict, subject, mask, self.patch,
                                                        _model_multiple(self.model))
        label, image = label[covered], image[covered]
        tumour = np.argwhere(label > 0)
        centre = (tumour.mean(0).astype(int) if len(tumour)
                  else np.asarray(label.shape) // 2)
        columns = [_normalise(image[..., i]) for i in range(4) if mask[i]]
        base = columns[-1]                       # the last input sequence, under the overlays
        if recon is not None:
            columns += [_normalise(recon[..., i]) for i in range(4) if not mask[i]]
        columns += [overlay(base, label), overlay(base, labels)]
        names = ([f"{MODALITIES[i]} (input)" for i in range(4) if mask[i]]
                 + ([f"{MODALITIES[i]} (synthesised)" for i in range(4) if not mask[i]]
                    if recon is not None else [])
                 + ["truth", "prediction"])
        for plane, panel in orthogonal_panels(columns, centre).items():
            tf.summary.image(f"{plane}/{code}", panel[None], step=step,
                             description=" | ".join(names))


class StepCheckpoints(keras.callbacks.Callback):
    """Weights at every validation under <run_dir>/checkpoints, the last `keep` kept."""

    def __init__(self, run_dir, keep):
        super().__init__()
        self.folder = pathlib.Path(run_dir) / "checkpoints"
        self.keep = int(keep)

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        step = int(self.model.optimizer.iterations.numpy())
        path = self.folder / f"step_{step:08d}.weights.h5"
        tmp = self.folder / f".step_{step:08d}.partial.weights.h5"
        self.model.save_weights(tmp)
        os.replace(tmp, path)
        for old in sorted(self.folder.glob("step_*.weights.h5"))[:-self.keep]:
            old.unlink()
