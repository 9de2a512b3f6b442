"""Segmentation metrics (pure NumPy, no I/O).

`dice(pred, truth)`: 2|P∩T| / (|P| + |T|) of boolean masks; both empty gives 1 (nothing to
find, nothing found). `region_dice(pred_labels, true_labels)`: Dice of the whole tumour, tumour
core and enhancing regions from training labels 0..3.
"""
from __future__ import annotations

import numpy as np

from hved_tf.modalities import region_masks


def dice(pred, truth):
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def region_dice(pred_labels, true_labels):
    """{"whole_tumour": d, "tumour_core": d, "enhancing": d} from training labels 0..3."""
    pred, truth = region_masks(pred_labels), region_masks(true_labels)
    return {name: dice(pred[name], truth[name]) for name in truth}
