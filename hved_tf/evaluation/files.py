"""Segmentations already on disk, scored like our own (`evaluate --predictions DIR`): nnU-Net's,
RFNet's, a challenge submission's or hved_tf's predict outputs land in the same tables.

`find_predictions(pred_dir, subjects)`: for each subject the first of `<id>.nii.gz`,
`<id>.nii`, `<id>/seg.nii.gz`, `<id>/seg.nii` under `pred_dir`, or None.

`check_predictions(...)`, before any scoring: a subject without a file is refused, all of them
listed, unless `missing_as_empty` (then it is scored as an empty prediction); a file on another
grid than the subject's label file (shape or voxel-to-world affine, compared in RAS so that a
reoriented copy of the same grid is accepted) and a file with label values of no known
convention are refused, naming the file.

Label conventions: "brats2018" (0/1/2/4), "brats2023" (0/1/2/3), or "auto" (per file: 4 present
means 2018, 3 present means 2023, neither means the two agree; both, or any other value, is an
error asking for `--predictions_convention`).

`prediction_rows(...)`: long-format rows (model = the predictions' name, subset = the inputs the
tool was given) with the same metrics as a model's (`hved_tf.evaluation.app.label_rows`).
"""
from __future__ import annotations

import os
import pathlib
from typing import Callable, Iterable

import numpy as np

from hved_tf.config.vocabulary import PREDICTION_CONVENTIONS
from hved_tf.io.nifti import load_nifti, read_geometry
from hved_tf.io.datasets import Subject
from hved_tf.modalities import LABEL_CONVENTIONS, to_training_labels
from hved_tf.preprocessing.grids import same_grid

PREDICTION_NAMES = ("{id}.nii.gz", "{id}.nii", "{id}/seg.nii.gz", "{id}/seg.nii")


def _label_path(subject):
    if subject.label_path is None:
        raise ValueError(f"Subject {subject.id} has no label file: the truth is needed to score "
                         "it.")
    return subject.label_path


def find_predictions(pred_dir: str | os.PathLike, subjects: list[Subject]) -> dict:
    """Each subject's segmentation file in a folder (one of `PREDICTION_NAMES`).

    Args:
        pred_dir: the folder.
        subjects: the subjects.

    Returns:
        {subject id: path, or None when there is none}.
    """
    pred_dir = pathlib.Path(pred_dir)
    found = {}
    for subject in subjects:
        paths = [pred_dir / name.format(id=subject.id) for name in PREDICTION_NAMES]
        found[subject.id] = next((p for p in paths if p.is_file()), None)
    return found


def detect_convention(values: Iterable, source: str | os.PathLike,
                      convention: str = "auto") -> str:
    """The label convention of a file (see the module docstring).

    Args:
        values: the label values it holds.
        source: the file (for messages).
        convention: the one given ("auto": from the values).

    Returns:
        A name of `LABEL_CONVENTIONS`.

    Raises:
        ValueError: values outside the given convention, or fitting none.
    """
    values = {int(v) for v in values}
    if convention != "auto":
        allowed = set(LABEL_CONVENTIONS[convention])
        if not values <= allowed:
            raise ValueError(f"{source}: label values {sorted(values - allowed)} are not in the "
                             f"{convention} convention {sorted(allowed)}; give the right "
                             "--predictions_convention.")
        return convention
    known = {name: set(v) for name, v in LABEL_CONVENTIONS.items()}
    fits = [name for name, allowed in known.items() if values <= allowed]
    if not fits:
        every = sorted(set().union(*known.values()))
        raise ValueError(f"{source}: label values {sorted(values)} fit no known convention "
                         f"(0/1/2/4 of BraTS 2018-2021, 0/1/2/3 of BraTS 2023; values "
                         f"{sorted(values - set(every))} are neither): convert the file's "
                         "labels, or give --predictions_convention.")
    return fits[0]


def check_predictions(pred_dir: str | os.PathLike, subjects: list[Subject],
                      missing_as_empty: bool = False, convention: str = "auto",
                      progress: Callable | None = None) -> dict:
    """Every segmentation file checked before any scoring (the module docstring says how).

    Args:
        pred_dir: the folder of segmentations.
        subjects: the subjects (their label files are the truth).
        missing_as_empty: a subject without a file is scored as an empty prediction.
        convention: the files' label convention ("auto": from each file's values).
        progress: `progress(index, subject id)` before each subject.

    Returns:
        {subject id: (path or None, convention)}.

    Raises:
        ValueError: no folder, missing files, another grid, unknown labels.
    """
    pred_dir = pathlib.Path(pred_dir)
    if not pred_dir.is_dir():
        raise ValueError(f"--predictions {pred_dir}: no such folder.")
    if convention not in PREDICTION_CONVENTIONS:
        raise ValueError(f"--predictions_convention must be one of "
                         f"{', '.join(PREDICTION_CONVENTIONS)}, got {convention!r}.")
    found = find_predictions(pred_dir, subjects)
    missing = [i for i, p in found.items() if p is None]
    if missing and not missing_as_empty:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                           if len(missing) > 10 else "")
        raise ValueError(f"--predictions {pred_dir} has no segmentation for {len(missing)} of "
                         f"{len(found)} subjects ({shown}; looked for "
                         f"{', '.join(n.format(id='<id>') for n in PREDICTION_NAMES)}): add "
                         "them, or score them as empty with --missing_as_empty.")
    checked: dict[str, tuple] = {}
    for k, subject in enumerate(subjects):
        if progress:
            progress(k, subject.id)
        path = found[subject.id]
        if path is None:
            checked[subject.id] = (None, None)
            continue
        pred, truth = read_geometry(path), read_geometry(_label_path(subject))
        if not same_grid(pred, truth):
            raise ValueError(
                f"{path} is on another grid than the truth {subject.label_path} (shape "
                f"{pred.ras_shape} vs {truth.ras_shape} in RAS, or a different voxel-to-world "
                "affine): resample the prediction onto the label file's grid.")
        data, _ = load_nifti(path, kind="label")
        checked[subject.id] = (path, detect_convention(np.unique(data), path, convention))
    return checked


def read_truth(subject: Subject) -> np.ndarray:
    """A subject's true labels.

    Args:
        subject: with a label file.

    Returns:
        Training labels 0..3 in RAS.
    """
    data, _ = load_nifti(_label_path(subject), kind="label")
    return to_training_labels(data, subject.label_convention, source=str(subject.label_path))


def read_prediction(path: str | os.PathLike, convention: str) -> np.ndarray:
    """A segmentation file's labels.

    Args:
        path: the file.
        convention: its label convention.

    Returns:
        Training labels in RAS (the orientation the truth is read in).
    """
    data, _ = load_nifti(path, kind="label")
    return to_training_labels(data, convention, source=str(path))


def prediction_rows(checked: dict, subjects: list[Subject], name: str, subset: str,
                    score: Callable, progress: Callable | None = None) -> list[dict]:
    """The results rows of segmentation files.

    Args:
        checked: `check_predictions`' answer.
        subjects: the subjects.
        name: the files' column in the tables.
        subset: the sequences the tool was given (a subset code).
        score: `score(pred_labels, truth_labels, spacing, base)` -> rows.
        progress: `progress(index, subject id)` before each subject.

    Returns:
        Every subject's rows.
    """
    rows = []
    for k, subject in enumerate(subjects):
        if progress:
            progress(k, subject.id)
        path, convention = checked[subject.id]
        truth = read_truth(subject)
        pred = (np.zeros_like(truth) if path is None else read_prediction(path, convention))
        spacing = read_geometry(_label_path(subject)).ras_zooms
        rows += score(pred, truth, spacing, {"model": name, "subject": subject.id,
                                             "subset": subset})
    return rows
