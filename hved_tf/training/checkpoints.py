"""What a training run keeps on disk to survive kills, crashes and full disks.

- `save_weights(model, path)`: the model's weights (and optimiser state) written atomically,
  after checking the folder has room for them: h5py writing onto a full disk fails half-way
  and can crash the process when the file is closed, so a save that cannot fit is refused
  with one line naming the folder before it starts.
- `check_room_for_run(model, folder, keep)`: before the first step, room for every weights
  file a run keeps (its step checkpoints, the backup, the best and final weights, model.keras),
  so that a run that could not save them stops at once rather than at its first validation.
- `StepCheckpoints`: weights at every validation under <run_dir>/checkpoints, the last N kept.
- `AtomicBackupAndRestore`: Keras' resume backups, never left half-written by a kill; a damaged
  backup (weights or metadata) falls back to the newest readable step checkpoint, with a
  warning naming what was skipped, or stops with a message saying what to do.
- `write_best` / `read_best_score`: best.json (the score and step of the validation that chose
  best.weights.h5); an older run's best.txt is read too; a damaged file gives a warning.
"""
from __future__ import annotations

import json
import logging
import pathlib
import shutil

import keras
import numpy as np

from hved_tf.io.atomic import atomic_path, check_writable, write_json

log = logging.getLogger("hved_tf")
HEADROOM = 1.2            # room asked for, as a multiple of the weights' size
MIN_ROOM = 1 << 20


def weights_bytes(model):
    """Bytes of the model's and its optimiser's variables (what a weights file holds)."""
    variables = list(model.weights)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables))


ADAM_COPIES = 3           # a weights file with Adam's state: the weights and two moments
RUN_FILES = 4             # besides the step checkpoints: backup, best, final, model.keras


def check_room_for_run(model, folder, keep):
    """Refuses, before training, a run folder without room for the run's weights files."""
    model_bytes = sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in model.weights)
    check_writable(folder, int(model_bytes * ADAM_COPIES * (keep + RUN_FILES) * HEADROOM)
                   + MIN_ROOM)


def save_weights(model, path):
    path = pathlib.Path(path)
    check_writable(path.parent, int(weights_bytes(model) * HEADROOM) + MIN_ROOM)
    with atomic_path(path) as tmp:
        model.save_weights(tmp)


BEST = "best.json"
LEGACY_BEST = "best.txt"          # "<score> <step>", written by runs before best.json


def write_best(run_dir, score, step, subset):
    """best.json: which validation chose best.weights.h5, and its score."""
    write_json(pathlib.Path(run_dir) / BEST, {
        "score": score, "step": step, "weights": "best.weights.h5",
        "score_is": f"mean validation Dice of whole tumour, tumour core and enhancing tumour "
                    f"with {subset}"})
    (pathlib.Path(run_dir) / LEGACY_BEST).unlink(missing_ok=True)


def read_best_score(run_dir):
    """The best validation score of a resumed run (best.json, or an older run's best.txt);
    -1 when there is none, or with a warning when the file is unreadable."""
    run_dir = pathlib.Path(run_dir)
    path = next((run_dir / n for n in (BEST, LEGACY_BEST) if (run_dir / n).is_file()), None)
    if path is None:
        return -1.0
    try:
        text = path.read_text()
        return float(json.loads(text)["score"] if path.name == BEST else text.split()[0])
    except (IndexError, ValueError, KeyError, TypeError, OSError) as err:
        log.warning("%s is unreadable (%s); the best validation score starts again, and "
                    "best.weights.h5 will be replaced at the next validation.", path,
                    err or "empty")
        return -1.0


class StepCheckpoints(keras.callbacks.Callback):
    """Weights at every validation under <run_dir>/checkpoints, the last `keep` kept."""

    def __init__(self, run_dir, keep):
        super().__init__()
        self.folder = pathlib.Path(run_dir) / "checkpoints"
        self.keep = int(keep)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        save_weights(self.model, self.folder / f"step_{step:08d}.weights.h5")
        for old in sorted(self.folder.glob("step_*.weights.h5"))[:-self.keep]:
            old.unlink()


def _step_of(path):
    return int(path.name[len("step_"):].split(".")[0])


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore with backups written under temporary names and renamed, and
    restored from a step checkpoint when damaged.

    Keras 3 (3.15) writes `latest.weights.h5` in place: a run killed while writing it leaves a
    damaged file that the next run fails to open ("bad object header version number"). This
    overrides its private `_save_model`: the weights and the metadata are written beside the
    backup and each renamed over the old one, so a backup is always a complete old or a
    complete new one. (Were the kill to fall between the two renames, the new weights come
    with the previous epoch number; StopAtStep counts optimiser steps, so the run still ends
    at the same step.) A backup damaged all the same (a disk fault, a hand edit) is replaced,
    with a warning, by the newest step checkpoint of `checkpoints` that loads; the epoch to
    resume at is its step over `steps_per_epoch`.
    """

    def __init__(self, backup_dir, checkpoints=None, steps_per_epoch=1, steps=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.checkpoints = pathlib.Path(checkpoints) if checkpoints else None
        self.steps_per_epoch = int(steps_per_epoch)
        self.steps = steps

    def _save_model(self):
        save_weights(self.model, self._weights_path)
        write_json(self._training_metadata_path, {"epoch": self._current_epoch,
                                                  "batch": self._last_batch_seen}, indent=None)

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            self._restore_from_checkpoint(reason)
        step = int(self.model.optimizer.iterations.numpy())
        if step:
            print(f"resuming from step {step}" + (f" of {self.steps}" if self.steps else "")
                  + f" (the backup in {self.backup_dir})", flush=True)

    def _restore_from_checkpoint(self, reason):
        backup = pathlib.Path(self.backup_dir)
        candidates = (sorted(self.checkpoints.glob("step_*.weights.h5"), reverse=True)
                      if self.checkpoints and self.checkpoints.is_dir() else [])
        skipped = []
        for path in candidates:
            try:
                self.model.load_weights(path)
            except Exception as err:  # h5py and Keras raise many kinds for a damaged file
                skipped.append(f"{path.name} ({type(err).__name__})")
                continue
            also = f" (also unreadable: {', '.join(skipped)})" if skipped else ""
            log.warning(f"The resume backup in {backup} is damaged ({reason}); resuming from "
                        f"{path} instead{also}.")
            epoch = _step_of(path) // self.steps_per_epoch
            with atomic_path(self._weights_path) as tmp:
                shutil.copyfile(path, tmp)
            write_json(self._training_metadata_path, {"epoch": epoch, "batch": 0}, indent=None)
            self.model._initial_epoch = epoch
            return
        raise ValueError(
            f"The resume backup in {backup} is damaged ({reason}) and no readable step "
            f"checkpoint is left in {self.checkpoints}"
            + (f" ({', '.join(skipped)} are damaged too)" if skipped else "")
            + f". Remove {backup} to train this run again from step 0, or use another "
            "--run_dir.")
