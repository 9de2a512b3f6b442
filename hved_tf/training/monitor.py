"""What a user sees of a training run while it goes: `TrainingLog`, a Keras callback.

Every `log_every` optimiser steps (and at the last) it writes to TensorBoard (`logs/train`), on
the step axis, each loss term averaged over those steps (not Keras' running mean since the
start of its "epoch"), the learning rate and the seconds per step; and it shows progress: on a
terminal one line rewritten at every step, otherwise a line at each of those points with the
step, the loss, the seconds per step and the time left. Validation (`callbacks.Validation`)
writes its Dice per subset and region and its images at the same steps under
`logs/validation`: one tag each, all on the optimiser step.
"""
from __future__ import annotations

import sys
import time

import keras
import tensorflow as tf

from hved_tf.progress import duration

SHORT = {"seg_dice": "dice", "seg_ce": "ce"}
ORDER = ("seg_dice", "seg_ce", "kl", "recon", "decay")


def window_means(previous, current):
    """Means over the steps between two of Keras' running means, each (count, {term: mean})
    since the start of the same Keras epoch: sum_b - sum_a over b - a steps."""
    (a, old), (b, new) = previous, current
    if b <= a:
        return dict(new)
    return {k: (b * v - a * old.get(k, 0.0)) / (b - a) for k, v in new.items()}


def learning_rate(optimizer, step):
    """The rate at `step` (Keras 3's `optimizer.learning_rate` is already the current one)."""
    rate = optimizer.learning_rate
    return float(rate(step) if callable(rate) else rate)


class TrainingLog(keras.callbacks.Callback):
    def __init__(self, log_dir, steps, log_every, stream=None):
        super().__init__()
        self.log_dir = str(log_dir)
        self.steps = int(steps)
        self.log_every = int(log_every)
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.writer = None
        self.previous = (0, {})
        self.batches = 0
        self.mark = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        self.previous, self.batches = (0, {}), 0     # Keras resets its means every epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        step = int(self.model.optimizer.iterations.numpy())
        if self.mark is None:                         # the rate from after the first step,
            self.mark = (step, time.time())           # which traces the step function
        terms = {k: float(v) for k, v in (logs or {}).items()}
        if self.tty:
            print(f"\r{self._line(step, terms, self._rate(step))}\033[K", end="",
                  file=self.stream, flush=True)
        if step % self.log_every and step < self.steps:
            return
        means = window_means(self.previous, (self.batches, terms))
        self.previous = (self.batches, terms)
        rate = self._rate(step)
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            for name, value in means.items():
                tf.summary.scalar(f"loss/{name}" if name != "loss" else "loss/total", value)
            tf.summary.scalar("learning_rate", learning_rate(self.model.optimizer, step))
            if rate:
                tf.summary.scalar("seconds_per_step", rate)
        self.writer.flush()
        self.mark = (step, time.time())
        if not self.tty:
            print(self._line(step, means, rate), file=self.stream, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.tty:                     # the validation line goes below the progress line
            print(file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()

    def _rate(self, step):
        if self.mark is None or step <= self.mark[0]:
            return None
        return (time.time() - self.mark[1]) / (step - self.mark[0])

    def _line(self, step, terms, rate):
        loss = terms.get("loss")
        parts = [f"step {step}/{self.steps}"]
        if loss is not None:
            names = sorted((k for k in terms if k != "loss"),
                           key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
            parts.append(f"loss {loss:.4f} (" + ", ".join(
                f"{SHORT.get(k, k)} {terms[k]:.3g}" for k in names) + ")")
        if rate:
            parts.append(f"{rate:.2f} s/step, about {duration(rate * (self.steps - step))} "
                         "left")
        return " | ".join(parts)
