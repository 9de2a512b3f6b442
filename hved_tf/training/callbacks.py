"""Keras callbacks of the training application.

- `StopAtStep`: ends training after exactly `steps` optimiser steps (Keras counts epochs; an
  "epoch" here is only the validation cadence, and a resumed run must end where an
  uninterrupted one does).
- `NonFiniteLoss`: raises `NonFiniteLossError` at the first NaN/Inf loss, before the epoch-end
  backup could save the bad weights, so the last good backup stays intact.
- `Validation`: Dice of whole tumour, core and enhancing on held-out subjects with all modalities
  and a list of subsets, TensorBoard scalars and images, the best weights, early stopping.
(`hved_tf.training.checkpoints`: the step checkpoints and the resume backups.)
Validation segments whole volumes through the one segmentation path (a `KerasSegmenter` over the
model being trained) with the run's validation settings (by default windows of the training
patch, no overlap, the posterior mean of z: fast and repeatable).
"""
from __future__ import annotations

import logging
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from hved_tf.config import ModelFacts
from hved_tf.figures import figure_pixels, subject_columns, subject_figure
from hved_tf.evaluation.metrics import region_dice
from hved_tf.inference.postprocess import ENHANCING
from hved_tf.inference.segmenter import KerasSegmenter
from hved_tf.modalities import (MODALITIES, REGION_SHORT, parse_subset,
                                subset_code, subset_mask)
from hved_tf.training.averaging import averaged_weights, uses_averaging
from hved_tf.training.checkpoints import read_best_score, save_weights, write_best
from hved_tf.training.monitor import learning_rate

log = logging.getLogger(__name__)


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


def subject_scores(segmenter, subjects, subsets):
    """{subset code: {subject id: {region: Dice}}} over subjects that have the subset's
    modalities (subsets the model refuses left out)."""
    scores = {}
    for code in subsets:
        mask = subset_mask(parse_subset(code))
        if segmenter.capabilities.refuses(mask):
            continue
        for subject in subjects:
            if subject.label is None or np.any(mask > subject.available):
                continue
            labels = segmenter.segment_prepared(subject, mask).labels
            scores.setdefault(code, {})[subject.id] = region_dice(labels,
                                                                  np.asarray(subject.label))
    return scores


def mean_scores(scores):
    """{subset code: {region: mean Dice over its subjects}}."""
    return {code: {r: float(np.mean([s[r] for s in per.values()]))
                   for r in next(iter(per.values()))} for code, per in scores.items()}


def evaluate_subjects(segmenter, subjects, subsets):
    """{subset code: {region: mean Dice}} over subjects that have the subset's modalities."""
    return mean_scores(subject_scores(segmenter, subjects, subsets))


def enhancing_by_t1c(scores, subjects):
    """Enhancing-tumour Dice over the subsets with T1c and over those without, on the subjects
    whose truth has an enhancing part (what T1c is for): {"with_t1c", "without_t1c", "gap"},
    or None unless both kinds of subsets were scored."""
    t1c = MODALITIES.index("T1c")
    enhancing = {s.id for s in subjects if s.label is not None and np.any(
        np.asarray(s.label) == ENHANCING)}
    groups = {True: [], False: []}
    for code, per in scores.items():
        has = t1c in parse_subset(code)
        groups[has] += [d["enhancing"] for sid, d in per.items() if sid in enhancing]
    if not groups[True] or not groups[False]:
        return None
    with_t1c, without = float(np.mean(groups[True])), float(np.mean(groups[False]))
    return {"with_t1c": with_t1c, "without_t1c": without, "gap": with_t1c - without,
            "subjects": len(enhancing)}


class Validation(keras.callbacks.Callback):
    """Validation Dice, TensorBoard scalars/images, best weights, early stopping."""

    def __init__(self, subjects, subsets, options, run_dir, patience=0, image_subset=None,
                 facts=None):
        super().__init__()
        self.facts = facts or ModelFacts()      # the training patch, the prior correction
        self.subjects = [s for s in subjects if s.label is not None]
        self.subsets = list(subsets)
        self.options = options
        self.run_dir = pathlib.Path(run_dir)
        self.patience = int(patience)
        self.image_subset = image_subset or "T1c+FLAIR"
        self.writer = None
        self.segmenter = self.image_segmenter = None
        self.best = -1.0
        self.wait = 0
        self.history = []

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(str(self.run_dir / "logs" / "validation"))
        # One traced function for the whole run (labels only, and labels with the images).
        self.segmenter = KerasSegmenter(self.model, self.options, synthesise=False,
                                        facts=self.facts)
        self.image_segmenter = KerasSegmenter(self.model, self.options, synthesise=True,
                                              facts=self.facts)
        self.best = read_best_score(self.run_dir)   # resumed: the best so far

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        lr = learning_rate(self.model.optimizer, step)
        if not self.subjects:
            return
        with averaged_weights(self.model):        # the moving average, if kept
            score, results = self._validate(step, lr)
            if score > self.best:
                self.best, self.wait = score, 0
                save_weights(self.model, self.run_dir / "best.weights.h5")
                write_best(self.run_dir, score, step, self.subsets[0])
                return
        self.wait += 1
        if self.patience and self.wait >= self.patience:
            print(f"early stopping: no improvement in {self.wait} validations", flush=True)
            self.model.stop_training = True

    def _validate(self, step, lr):
        """(score, {subset: {region: Dice}}): scored, logged and printed."""
        results = evaluate_subjects(self.segmenter, self.subjects, self.subsets)
        full = results.get(self.subsets[0], {})
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            for code, regions in results.items():
                for region, value in regions.items():
                    tf.summary.scalar(f"dice/{code}/{region}", value)
            self._images(step)
        self.writer.flush()
        line = " | ".join(
            f"{code}: " + " ".join(f"{REGION_SHORT.get(r, r)} {v:.3f}" for r, v in reg.items())
            for code, reg in results.items())
        averaged = ", averaged weights" if uses_averaging(self.model) else ""
        print(f"validation at step {step} (lr {lr:.2e}{averaged}): {line}", flush=True)
        self.history.append({"step": step, **{c: r for c, r in results.items()}})
        return (float(np.mean(list(full.values()))) if full else -1.0), results

    def _images(self, step):
        """One labelled figure of the first validation subject (see hved_tf.figures)."""
        subject = self.subjects[0]
        code = self.model.capabilities.subset or self.image_subset
        mask = subset_mask(parse_subset(code)) * subject.available
        if not mask.any():
            mask = subject.available
        code = subset_code(np.flatnonzero(mask))
        out = self.image_segmenter.segment_prepared(subject, mask)
        columns = subject_columns(np.asarray(subject.image), mask, out.labels,
                                  out.outputs.get("recon"),
                                  truth_labels=np.asarray(subject.label),
                                  uncertainty=out.outputs.get("entropy"))
        figure = subject_figure(columns, title=f"{subject.id} · {code} present · step {step}")
        tf.summary.image(f"validation/{code}", figure_pixels(figure)[None], step=step,
                         description=f"{subject.id}: inputs, synthesised sequences, truth, "
                         "prediction and uncertainty through the tumour's centre")
