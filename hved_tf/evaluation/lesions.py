"""Lesion-wise Dice and HD95, as the BraTS challenges rank since 2023 (written from the published
definition; NumPy/SciPy).

For one region (binary masks of prediction and truth):
1. The truth's 26-connected components are dilated `dilation` times with the 3-D 18-neighbourhood
   structuring element; truth components whose dilations overlap become one lesion (the lesion
   is the truth inside one connected component of the dilated truth).
2. Every 26-connected predicted component that touches a lesion's dilated region belongs to that
   lesion; the lesion scores Dice and HD95 between its truth and the union of its predicted
   components (none: Dice 0, HD95 `MISS_HD95`).
3. A predicted component that touches no dilated lesion is a false positive: Dice 0, HD95
   `MISS_HD95`.
4. Lesions of at most `threshold` voxels leave the score (numerator and denominator); predicted
   components touching them are not false positives.
5. Lesion-wise Dice = sum over the remaining lesions / (their number + false positives), HD95
   likewise. Both masks empty: Dice 1, HD95 0.

`PRESETS`: "brats2023" (dilation 3, threshold 50 voxels for every region) and "brats2024"
(dilation 3, threshold 20, 10 for the enhancing tumour). Regions are training-label regions
(whole tumour, tumour core, enhancing), as `hved_tf.modalities.region_masks` gives them.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy import ndimage

from hved_tf.evaluation.metrics import dice, hd95
from hved_tf.modalities import region_masks

MISS_HD95 = 374.0                 # the challenges' penalty for a missed or spurious lesion
CONNECTIVITY = ndimage.generate_binary_structure(3, 3)      # 26 neighbours: components
DILATION_ELEMENT = ndimage.generate_binary_structure(3, 2)  # 18 neighbours: dilation


@dataclasses.dataclass(frozen=True)
class LesionProtocol:
    """How a BraTS challenge year counts lesions: the dilation that merges nearby ones and the
    size under which a lesion leaves the score."""
    dilation: int = 3
    threshold: int = 50           # lesions of at most this many voxels leave the score
    enhancing_threshold: int | None = None   # for the enhancing region, when it differs

    def threshold_for(self, region: str) -> int:
        """The size threshold of a region.

        Args:
            region: "whole_tumour", "tumour_core" or "enhancing".

        Returns:
            Voxels: lesions of at most this many leave the score.
        """
        if region == "enhancing" and self.enhancing_threshold is not None:
            return self.enhancing_threshold
        return self.threshold


PRESETS = {"brats2023": LesionProtocol(3, 50),
           "brats2024": LesionProtocol(3, 20, enhancing_threshold=10)}


@dataclasses.dataclass
class LesionScores:
    """One region's lesion-wise scores."""
    dice: float                   # lesion-wise Dice (see the module docstring)
    hd95: float                   # lesion-wise HD95, mm
    lesions: list                 # per counted lesion: {"voxels", "dice", "hd95", "detected"}
    false_positives: int
    small_lesions: int            # lesions at or under the threshold, left out


def _union(boxes, shape, margin=1):
    """The smallest box (slices) holding every box of `boxes`, grown by `margin` voxels."""
    lo = np.min([[b.start for b in box] for box in boxes], axis=0) - margin
    hi = np.max([[b.stop for b in box] for box in boxes], axis=0) + margin
    return tuple(slice(int(max(a, 0)), int(min(b, s))) for a, b, s in zip(lo, hi, shape))


def lesions_of(truth: np.ndarray, dilation: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The truth's lesions: its components merged where their dilations overlap.

    Args:
        truth: a region's true mask [X, Y, Z].
        dilation: iterations of the 18-neighbour dilation (0: none).

    Returns:
        (lesion labels of the truth's voxels, labels of the dilated regions, their count).
    """
    truth = np.asarray(truth, bool)
    dilated = ndimage.binary_dilation(truth, DILATION_ELEMENT, iterations=dilation) \
        if dilation else truth
    regions, count = ndimage.label(dilated, CONNECTIVITY)
    return np.where(truth, regions, 0), regions, count


def lesion_scores(pred: np.ndarray, truth: np.ndarray,
                  spacing: Sequence[float] = (1.0, 1.0, 1.0), dilation: int = 3,
                  threshold: int = 50) -> LesionScores:
    """The lesion-wise scores of one region (see the module docstring).

    Args:
        pred: the predicted mask.
        truth: the true mask, the same shape.
        spacing: voxel sizes (mm).
        dilation: of `lesions_of`.
        threshold: lesions of at most this many voxels leave the score.

    Returns:
        The LesionScores.
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    if not pred.any() and not truth.any():
        return LesionScores(1.0, 0.0, [], 0, small_lesions=0)
    lesions, regions, count = lesions_of(truth, dilation)
    components, n_components = ndimage.label(pred, CONNECTIVITY)
    overlap = pred & (regions > 0)
    # (component, dilated region) pairs that touch.
    pairs = np.unique(np.stack([components[overlap], regions[overlap]]), axis=1)
    false_positives = n_components - len(np.unique(pairs[0]))
    region_boxes = ndimage.find_objects(regions)
    component_boxes = ndimage.find_objects(components)
    scored, small = [], 0
    for k in range(1, count + 1):
        own = pairs[0][pairs[1] == k]
        box = _union([region_boxes[k - 1]] + [component_boxes[c - 1] for c in own],
                     truth.shape)
        lesion = lesions[box] == k
        voxels = int(lesion.sum())
        if voxels <= threshold:
            small += 1
            continue
        if not len(own):
            scored.append({"voxels": voxels, "dice": 0.0, "hd95": MISS_HD95, "detected": False})
            continue
        matched = np.isin(components[box], own)
        scored.append({"voxels": voxels, "dice": dice(matched, lesion),
                       "hd95": hd95(matched, lesion, spacing), "detected": True})
    total = len(scored) + false_positives
    if total == 0:                # only lesions under the threshold, no false positive
        return LesionScores(1.0, 0.0, [], 0, small_lesions=small)
    return LesionScores(sum(s["dice"] for s in scored) / total,
                        (sum(s["hd95"] for s in scored) + MISS_HD95 * false_positives) / total,
                        scored, false_positives, small_lesions=small)


def region_lesion_metrics(pred_labels: np.ndarray, true_labels: np.ndarray,
                          spacing: Sequence[float] = (1.0, 1.0, 1.0),
                          protocol: LesionProtocol = PRESETS["brats2023"]) -> dict[str, dict]:
    """The lesion-wise scores of each tumour region.

    Args:
        pred_labels: predicted training labels 0..3.
        true_labels: true ones, the same shape.
        spacing: voxel sizes (mm).
        protocol: the challenge year's rules.

    Returns:
        {region: {"lesion_dice", "lesion_hd95", "lesions", "false_positives"}}.
    """
    pred, truth = region_masks(pred_labels), region_masks(true_labels)
    out = {}
    for region in truth:
        s = lesion_scores(pred[region], truth[region], spacing, protocol.dilation,
                          threshold=protocol.threshold_for(region))
        out[region] = {"lesion_dice": s.dice, "lesion_hd95": s.hd95,
                       "lesions": len(s.lesions), "false_positives": s.false_positives}
    return out
