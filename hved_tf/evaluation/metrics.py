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

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import wilcoxon
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

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


# ------------------------------------------------------------------ surface distances

def surface(mask):
    """Voxels of `mask` with a face neighbour outside it (the volume's edge counts as outside)."""
    mask = np.asarray(mask, bool)
    inner = np.pad(mask, 1, constant_values=False)
    eroded = inner.copy()
    for axis in range(mask.ndim):
        for shift in (1, -1):
            eroded &= np.roll(inner, shift, axis=axis)
    return mask & ~eroded[tuple(slice(1, -1) for _ in range(mask.ndim))]


def empty_penalty(shape, spacing=(1.0, 1.0, 1.0)):
    """HD95 when exactly one of the masks is empty: the grid's diagonal in mm (BraTS' choice:
    373.13 mm for 240x240x155 at 1 mm)."""
    return float(np.sqrt(np.sum((np.asarray(shape, float) * np.asarray(spacing, float)) ** 2)))


def hd95(pred, truth, spacing=(1.0, 1.0, 1.0), penalty=None):
    """95th percentile of the symmetric surface distances (mm), both directions pooled.

    Both empty: 0. One empty: `penalty`, by default `empty_penalty` (the grid's diagonal).
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"Shapes differ: prediction {pred.shape}, truth {truth.shape}.")
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return empty_penalty(pred.shape, spacing) if penalty is None else float(penalty)
    spacing = np.asarray(spacing, float)
    a = np.argwhere(surface(pred)) * spacing
    b = np.argwhere(surface(truth)) * spacing
    d_ab = cKDTree(b).query(a)[0]
    d_ba = cKDTree(a).query(b)[0]
    return float(np.percentile(np.concatenate([d_ab, d_ba]), 95))


def sensitivity(pred, truth):
    """TP / (TP + FN); NaN when the truth is empty (undefined)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    positives = int(truth.sum())
    return float(np.logical_and(pred, truth).sum() / positives) if positives else float("nan")


def specificity(pred, truth):
    """TN / (TN + FP) over the grid; NaN when the truth covers it all."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    negatives = int((~truth).sum())
    return (float(np.logical_and(~pred, ~truth).sum() / negatives) if negatives
            else float("nan"))


def region_metrics(pred_labels, true_labels, spacing=(1.0, 1.0, 1.0), hd95_penalty=None):
    """{region: {"dice", "hd95", "sensitivity", "specificity"}} from training labels 0..3
    (`hd95_penalty`: HD95 when exactly one mask is empty; None: the grid's diagonal)."""
    pred, truth = region_masks(pred_labels), region_masks(true_labels)
    return {name: {"dice": dice(pred[name], truth[name]),
                   "hd95": hd95(pred[name], truth[name], spacing, hd95_penalty),
                   "sensitivity": sensitivity(pred[name], truth[name]),
                   "specificity": specificity(pred[name], truth[name])}
            for name in truth}


def image_metrics(synthesised, truth, foreground):
    """{"psnr", "ssim"} of a synthesised volume against the real one (scikit-image).

    The data range is the real volume's range inside `foreground`; PSNR is taken inside the
    foreground, SSIM over the volume (a 7-voxel 3-D window).
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


def clip_and_scale(volume, mask, low=0.5, high=99.5):
    """The volume clipped to its [low, high] percentiles inside `mask`, scaled to [0, 1]."""
    volume = np.asarray(volume, np.float64)
    lo, hi = np.percentile(volume[mask], [low, high])
    return np.clip((volume - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0)


def brasyn_metrics(synthesised, truth, brain, tumour):
    """BraSyn's synthesis scores: each volume clipped to its 0.5-99.5 percentiles in the brain
    and scaled to [0, 1]; the SSIM map (data range 1) averaged inside the tumour and inside the
    rest of the brain; MSE and PSNR in the brain. {"brasyn_ssim_tumour" (NaN without tumour),
    "brasyn_ssim_healthy", "brasyn_mse", "brasyn_psnr"}."""
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

def wilcoxon_p(a, b):
    """Two-sided Wilcoxon signed-rank p-value of paired samples; 1.0 when all pairs are equal
    and NaN with fewer than two pairs."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"Paired samples differ in size: {a.shape} and {b.shape}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return float("nan")
    if np.all(a == b):
        return 1.0
    return float(wilcoxon(a, b).pvalue)
