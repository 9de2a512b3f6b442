"""Evaluation metrics (NumPy/SciPy/scikit-image, no I/O).

`dice(pred, truth)`: 2|P∩T| / (|P| + |T|) of boolean masks; both empty gives 1 (nothing to
find, nothing found). `region_dice(pred_labels, true_labels)`: Dice of the whole tumour, tumour
core and enhancing regions from training labels 0..3. `hd95`: the 95th percentile of the
symmetric surface distances in mm (surfaces: voxels with a face neighbour outside; distances by
a k-d tree over surface voxel centres); both masks empty gives 0, exactly one empty gives the
grid's diagonal in mm (BraTS' penalty, 373.13 mm for 240x240x155). `region_metrics` adds
sensitivity and specificity; `image_metrics` gives PSNR and SSIM of a synthesised sequence,
`brasyn_metrics` the BraSyn challenge's scores (SSIM inside and outside the tumour, MSE, PSNR,
after percentile clipping);
`wilcoxon_p` is the paired test of the Table-1 significance marks.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import wilcoxon
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hved_tf.modalities import region_masks


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """The Dice of two masks.

    Args:
        pred: the predicted mask (any array, read as bool).
        truth: the true mask, the same shape.

    Returns:
        2|P∩T| / (|P| + |T|); 1.0 when both are empty.

    Raises:
        ValueError: when the shapes differ.
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def region_dice(pred_labels: np.ndarray, true_labels: np.ndarray) -> dict[str, float]:
    """The Dice of each tumour region.

    Args:
        pred_labels: predicted training labels 0..3.
        true_labels: true training labels, the same shape.

    Returns:
        {"whole_tumour": d, "tumour_core": d, "enhancing": d}.
    """
    pred, truth = region_masks(pred_labels), region_masks(true_labels)
    return {name: dice(pred[name], truth[name]) for name in truth}


# ------------------------------------------------------------------ surface distances

def surface(mask: np.ndarray) -> np.ndarray:
    """The surface voxels of a mask.

    Args:
        mask: any array, read as bool.

    Returns:
        bool, the voxels of `mask` with a face neighbour outside it (the volume's edge counts
        as outside).
    """
    mask = np.asarray(mask, bool)
    inner = np.pad(mask, 1, constant_values=False)
    eroded = inner.copy()
    for axis in range(mask.ndim):
        for shift in (1, -1):
            eroded &= np.roll(inner, shift, axis=axis)
    return mask & ~eroded[tuple(slice(1, -1) for _ in range(mask.ndim))]


def empty_penalty(shape: Sequence[int], spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """HD95 when exactly one of the masks is empty (BraTS' choice).

    Args:
        shape: the grid's shape.
        spacing: its voxel sizes (mm).

    Returns:
        The grid's diagonal in mm (373.13 for 240x240x155 at 1 mm).
    """
    return float(np.sqrt(np.sum((np.asarray(shape, float) * np.asarray(spacing, float)) ** 2)))


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
         penalty: float | None = None) -> float:
    """The 95th percentile of the symmetric surface distances, both directions pooled.

    Args:
        pred: the predicted mask.
        truth: the true mask, the same shape.
        spacing: voxel sizes (mm) along the array's axes.
        penalty: the value when exactly one mask is empty (None: `empty_penalty`).

    Returns:
        mm; 0 when both masks are empty.

    Raises:
        ValueError: when the shapes differ.
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return empty_penalty(pred.shape, spacing) if penalty is None else float(penalty)
    mm = np.asarray(spacing, float)
    a = np.argwhere(surface(pred)) * mm
    b = np.argwhere(surface(truth)) * mm
    d_ab = cKDTree(b).query(a)[0]
    d_ba = cKDTree(a).query(b)[0]
    return float(np.percentile(np.concatenate([d_ab, d_ba]), 95))


def sensitivity(pred: np.ndarray, truth: np.ndarray) -> float:
    """The share of the truth found.

    Args:
        pred: the predicted mask.
        truth: the true mask.

    Returns:
        TP / (TP + FN); NaN when the truth is empty (undefined).
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    positives = int(truth.sum())
    return float(np.logical_and(pred, truth).sum() / positives) if positives else float("nan")


def specificity(pred: np.ndarray, truth: np.ndarray) -> float:
    """The share of the outside left out.

    Args:
        pred: the predicted mask.
        truth: the true mask.

    Returns:
        TN / (TN + FP) over the grid; NaN when the truth covers it all.
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    negatives = int((~truth).sum())
    return (float(np.logical_and(~pred, ~truth).sum() / negatives) if negatives
            else float("nan"))


def region_metrics(pred_labels: np.ndarray, true_labels: np.ndarray,
                   spacing: Sequence[float] = (1.0, 1.0, 1.0),
                   hd95_penalty: float | None = None) -> dict[str, dict[str, float]]:
    """Dice, HD95, sensitivity and specificity of each tumour region.

    Args:
        pred_labels: predicted training labels 0..3.
        true_labels: true training labels, the same shape.
        spacing: voxel sizes (mm).
        hd95_penalty: HD95 when exactly one mask is empty (None: the grid's diagonal).

    Returns:
        {region: {"dice", "hd95", "sensitivity", "specificity"}}.
    """
    pred, truth = region_masks(pred_labels), region_masks(true_labels)
    return {name: {"dice": dice(pred[name], truth[name]),
                   "hd95": hd95(pred[name], truth[name], spacing, hd95_penalty),
                   "sensitivity": sensitivity(pred[name], truth[name]),
                   "specificity": specificity(pred[name], truth[name])}
            for name in truth}


def image_metrics(synthesised: np.ndarray, truth: np.ndarray,
                  foreground: np.ndarray) -> dict[str, float]:
    """PSNR and SSIM of a synthesised volume against the real one (scikit-image).

    The data range is the real volume's range inside `foreground`; PSNR is taken inside the
    foreground, SSIM over the volume (a 7-voxel 3-D window).

    Args:
        synthesised: the synthesised volume.
        truth: the real one, the same shape.
        foreground: the mask of the head (not empty).

    Returns:
        {"psnr", "ssim"}.
    """
    synthesised = np.asarray(synthesised, np.float64)
    truth = np.asarray(truth, np.float64)
    foreground = np.asarray(foreground, bool)
    if not foreground.any():
        raise ValueError("image_metrics: the foreground mask is empty.")
    inside = truth[foreground]
    data_range = float(inside.max() - inside.min()) or 1.0
    with np.errstate(divide="ignore"):      # identical volumes: PSNR is +inf
        psnr = peak_signal_noise_ratio(inside, synthesised[foreground], data_range=data_range)
    win = min(7, *[s - (1 - s % 2) for s in truth.shape])
    ssim = structural_similarity(truth, synthesised, data_range=data_range, win_size=win)
    return {"psnr": float(psnr), "ssim": float(ssim)}


def clip_and_scale(volume: np.ndarray, mask: np.ndarray, low: float = 0.5,
                   high: float = 99.5) -> np.ndarray:
    """A volume clipped to its percentiles inside a mask and scaled to [0, 1].

    Args:
        volume: the volume.
        mask: where the percentiles are taken (bool).
        low: the lower percentile.
        high: the upper percentile.

    Returns:
        float64, the same shape.
    """
    volume = np.asarray(volume, np.float64)
    lo, hi = np.percentile(volume[mask], [low, high])
    return np.clip((volume - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0)


def brasyn_metrics(synthesised: np.ndarray, truth: np.ndarray, brain: np.ndarray,
                   tumour: np.ndarray) -> dict[str, float]:
    """BraSyn's synthesis scores: each volume clipped to its 0.5-99.5 percentiles in the brain
    and scaled to [0, 1]; the SSIM map (data range 1) averaged inside the tumour and inside the
    rest of the brain; MSE and PSNR in the brain.

    Args:
        synthesised: the synthesised volume.
        truth: the real one.
        brain: the brain mask (not empty).
        tumour: the tumour mask.

    Returns:
        {"brasyn_ssim_tumour" (NaN without tumour), "brasyn_ssim_healthy", "brasyn_mse",
        "brasyn_psnr"}.
    """
    brain = np.asarray(brain, bool)
    tumour = np.asarray(tumour, bool) & brain
    if not brain.any():
        raise ValueError("brasyn_metrics: the brain mask is empty.")
    s = clip_and_scale(synthesised, brain)
    t = clip_and_scale(truth, brain)
    win = min(7, *[n - (1 - n % 2) for n in t.shape])
    _, ssim_map = structural_similarity(t, s, data_range=1.0, win_size=win, full=True)
    healthy = brain & ~tumour
    mse = float(np.mean((s[brain] - t[brain]) ** 2))
    return {"brasyn_ssim_tumour": float(ssim_map[tumour].mean()) if tumour.any() else np.nan,
            "brasyn_ssim_healthy": float(ssim_map[healthy].mean()) if healthy.any() else np.nan,
            "brasyn_mse": mse,
            "brasyn_psnr": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")}


# ------------------------------------------------------------------ paired statistics

def wilcoxon_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """The two-sided Wilcoxon signed-rank test of paired samples (pairs with a NaN left out).

    Args:
        a: the first sample.
        b: the second, paired with it.

    Returns:
        The p-value; 1.0 when all pairs are equal, NaN with fewer than two pairs.
    """
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"Paired samples differ in size: {x.shape} and {y.shape}.")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2:
        return float("nan")
    if np.all(x == y):
        return 1.0
    return float(wilcoxon(x, y).pvalue)
