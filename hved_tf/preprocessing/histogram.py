"""Nyúl histogram standardisation, compatible with NiftyNet 0.5.0 and its hist.txt files.

Facts of NiftyNet 0.5.0 this module reproduces (learned by reading its code; docs/explanation/design.md):
- hist.txt: one line per modality, its name then 13 landmarks, the intensities mapped from the
  percentiles (cutoff0, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, cutoff1) onto 0..100.
- Training: for every image and modality, those percentiles (linear interpolation) over the
  modality's own foreground; each image's percentiles are mapped linearly so that the first goes
  to 0 and the last to 100, and the landmarks are the mean over images.
- Applying, 'percentile' type: 11 of the 13 landmarks (not 25 and 75) with the image's own
  percentiles over the mask at those cut points; the cutoffs are first widened to at most 0.09
  and at least 0.91; the map is piecewise linear, its first and last pieces extended past the
  ends; two equal image percentiles give a flat piece.
- 'mean_plus' foreground: voxels above the volume's mean, dilated twice (6-connectivity), holes
  filled; it must not be empty.
Pure NumPy/SciPy.
"""
from __future__ import annotations

import os
import pathlib
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from hved_tf.io.atomic import write_text
from hved_tf.modalities import MODALITIES, canonical_modality

PERCENTILES_INNER = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9)
NUM_LANDMARKS = len(PERCENTILES_INNER) + 2          # 13
PERCENTILE_POINTS = (0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12)   # 'percentile' type: not 25, 75
DEFAULT_CUTOFF = (0.001, 0.999)
STANDARD_RANGE = (0.0, 100.0)
# Names written into hist.txt, as the release's configuration named its modalities.
NIFTYNET_NAMES = {"T1": "T1", "T1c": "T1c", "T2": "T2", "FLAIR": "Flair"}


def mean_plus_mask(volume: np.ndarray) -> np.ndarray:
    """NiftyNet's 'mean_plus' foreground: above the mean, dilated twice, holes filled.

    Args:
        volume: a 3-D volume.

    Returns:
        bool, the same shape.

    Raises:
        ValueError: when it is empty (a constant image).
    """
    volume = np.asarray(volume)
    mask = volume > np.mean(volume)
    mask = ndimage.binary_dilation(mask, iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    if not mask.any():
        raise ValueError("The 'mean_plus' foreground is empty: is the image constant?")
    return mask


def percentiles(volume: np.ndarray, mask: np.ndarray,
                cutoff: tuple = DEFAULT_CUTOFF) -> np.ndarray:
    """The 13 landmark percentiles of a volume.

    Args:
        volume: a 3-D volume.
        mask: where they are taken.
        cutoff: the lowest and highest (as fractions).

    Returns:
        float64 [13].
    """
    points = np.array([cutoff[0], *PERCENTILES_INNER, cutoff[1]])
    values = np.asarray(volume)[np.asarray(mask, bool)]
    if values.size == 0:
        raise ValueError("Cannot take percentiles over an empty mask.")
    return np.percentile(values, 100 * points)


def _check_landmarks(name, values, source="landmarks"):
    values = np.asarray(values, np.float64)
    if values.shape != (NUM_LANDMARKS,):
        raise ValueError(f"{source}: modality {name} has {values.size} landmarks, "
                         f"expected {NUM_LANDMARKS}.")
    # Ties are allowed (a small brain's 'mean_plus' mask can put several low percentiles on the
    # zero background, as NiftyNet would); a decrease, or no range at all, is not.
    if (not np.all(np.isfinite(values)) or np.any(np.diff(values) < 0)
            or values[-1] <= values[0]):
        raise ValueError(f"{source}: the landmarks of {name} are not increasing "
                         f"({values.tolist()}); retrain them (train_landmarks) or fix the file.")
    return values


def read_niftynet_landmarks(path: str | os.PathLike,
                            modalities: Sequence[str] = MODALITIES) -> dict[str, np.ndarray]:
    """The landmarks of a NiftyNet hist.txt (names matched case-insensitively with aliases:
    Flair, t1ce, ...).

    Args:
        path: the file.
        modalities: those that must be there.

    Returns:
        {canonical modality: float64 [13]}.

    Raises:
        ValueError: naming the file, and the line or the missing modalities.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"Histogram landmark file {path} does not exist. Train landmarks on the "
                         "training subjects (train_landmarks) or give the release's hist.txt.")
    landmarks = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if len(parts) < 2:
            continue
        try:
            name = canonical_modality(parts[0])
        except ValueError:
            raise ValueError(f"{path}, line {number}: unknown modality {parts[0]!r}.") from None
        try:
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise ValueError(f"{path}, line {number}: landmarks must be numbers.") from None
        landmarks[name] = _check_landmarks(name, values, f"{path}, line {number}")
    missing = [m for m in modalities if canonical_modality(m) not in landmarks]
    if missing:
        raise ValueError(f"{path} has no landmarks for {', '.join(missing)}; it holds "
                         f"{', '.join(landmarks) or 'nothing'}. Retrain the landmarks with "
                         "those modalities or use a complete file.")
    return landmarks


def write_niftynet_landmarks(path: str | os.PathLike, landmarks: dict) -> None:
    """Writes landmarks as a NiftyNet hist.txt, whole or not at all.

    Args:
        path: the file.
        landmarks: {modality: 13 increasing values}.
    """
    path = pathlib.Path(path)
    lines = []
    for name, values in landmarks.items():
        canonical = canonical_modality(name)
        values = _check_landmarks(canonical, values)
        lines.append(" ".join([NIFTYNET_NAMES[canonical]] + [repr(float(v)) for v in values]))
    write_text(path, "\n".join(lines) + "\n")


def train_landmarks(images: Iterable, masks: Sequence | None = None,
                    cutoff: tuple = DEFAULT_CUTOFF) -> dict[str, np.ndarray]:
    """Landmarks averaged over images, NiftyNet's way.

    Args:
        images: [X, Y, Z, 4] volumes (a missing modality all zeros, then skipped).
        masks: matching [X, Y, Z(, 4)] masks (None: each modality's 'mean_plus' foreground).
        cutoff: the lowest and highest percentiles (as fractions).

    Returns:
        {modality: float64 [13]} of the modalities seen.

    Raises:
        ValueError: a misshapen image, or no data at all.
    """
    per_modality: dict[str, list] = {m: [] for m in MODALITIES}
    for k, image in enumerate(images):
        image = np.asarray(image, np.float32)
        if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
            raise ValueError(f"Image {k}: expected [X, Y, Z, {len(MODALITIES)}], got {image.shape}.")
        for i, name in enumerate(MODALITIES):
            volume = image[..., i]
            if not volume.any():
                continue
            if masks is None:
                mask = mean_plus_mask(volume)
            else:
                mask = np.asarray(masks[k], bool)
                mask = mask[..., i] if mask.ndim == 4 else mask
            per_modality[name].append(percentiles(volume, mask, cutoff))
    s1, s2 = STANDARD_RANGE
    landmarks = {}
    for name, rows in per_modality.items():
        if not rows:
            continue
        perc = np.vstack(rows)                                             # [n, 13]
        slope = np.nan_to_num((s2 - s1) / (perc[:, -1] - perc[:, 0]))      # [n]
        landmarks[name] = slope @ perc / len(perc) + np.mean(s1 - slope * perc[:, 0])
    if not landmarks:
        raise ValueError("No image with data to train landmarks on.")
    return landmarks


def standardise_cutoff(cutoff: tuple) -> tuple[float, float]:
    """NiftyNet's widening of the cutoffs for the 'percentile' type.

    Args:
        cutoff: (low, high) fractions.

    Returns:
        (at most 0.09, at least 0.91).
    """
    lo, hi = sorted(float(c) for c in cutoff)
    return max(0.0, min(lo, 0.09)), min(1.0, max(hi, 0.91))


def apply_landmarks(volume: np.ndarray, mask: np.ndarray, landmarks: np.ndarray,
                    cutoff: tuple = DEFAULT_CUTOFF) -> np.ndarray:
    """Nyúl's piecewise-linear standardisation of one volume.

    Args:
        volume: a 3-D volume.
        mask: its foreground (where its percentiles are taken).
        landmarks: the modality's 13 trained landmarks.
        cutoff: the lowest and highest percentiles (as fractions).

    Returns:
        float64, the same shape.
    """
    volume = np.asarray(volume)
    landmarks = np.asarray(landmarks, np.float64)
    perc = percentiles(volume, mask, standardise_cutoff(cutoff))[list(PERCENTILE_POINTS)]
    target = landmarks[list(PERCENTILE_POINTS)]
    dx = np.diff(perc)
    dx[dx == 0] = np.inf                      # equal percentiles: a flat piece
    slope = np.diff(target) / dx                                           # [10]
    intercept = target[:-1] - slope * perc[:-1]                            # [10]
    piece = np.digitize(volume, perc[1:-1], right=False)                   # 0..9
    return slope[piece] * volume + intercept[piece]
