"""Modality names and order, the 15 modality subsets, BraTS label conventions and regions.

Pure Python/NumPy: imported by every layer of the package, imports nothing of it.

Modality order everywhere (tensors, masks, checkpoints): T1, T1c, T2, FLAIR, as in the
original release. A *subset* is a tuple of modality indices in increasing order; its *code* is
the names joined by "+", e.g. "T1c+T2". The 15 non-empty subsets are listed by size, then
lexicographically by index (the order of ``itertools.combinations``, as in the original).

Labels: the network always works on *training labels* 0..3 (background, necrotic/non-enhancing
core, oedema, enhancing). A *label convention* says how a dataset writes them on disk:
"brats2018" (BraTS 2018-2021: 0, 1, 2, 4) or "brats2023" (0, 1, 2, 3).
"""
from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import numpy as np

MODALITIES: tuple[str, ...] = ("T1", "T1c", "T2", "FLAIR")
NUM_MODALITIES = len(MODALITIES)

# Names accepted from users and files, case-insensitively, for each modality.
_ALIASES = {
    "t1": "T1", "t1n": "T1",
    "t1c": "T1c", "t1ce": "T1c", "t1gd": "T1c",
    "t2": "T2", "t2w": "T2",
    "flair": "FLAIR", "t2f": "FLAIR",
}

SUBSETS: tuple[tuple[int, ...], ...] = tuple(
    s for k in range(1, NUM_MODALITIES + 1)
    for s in itertools.combinations(range(NUM_MODALITIES), k))
NUM_SUBSETS = len(SUBSETS)  # 15


def canonical_modality(name: str) -> str:
    """Returns the canonical name ("T1", "T1c", "T2", "FLAIR") of a modality alias."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown modality {name!r}: expected one of {', '.join(MODALITIES)} "
            f"(aliases: {', '.join(sorted(_ALIASES))}).")
    return _ALIASES[key]


def modality_index(name: str) -> int:
    """Position of a modality in the channel order."""
    return MODALITIES.index(canonical_modality(name))


def subset_code(subset: Iterable[int]) -> str:
    """"T1c+T2" for (1, 2)."""
    subset = tuple(sorted(subset))
    if not subset:
        raise ValueError("A modality subset must hold at least one modality.")
    return "+".join(MODALITIES[i] for i in subset)


SUBSET_CODES: tuple[str, ...] = tuple(subset_code(s) for s in SUBSETS)


def parse_subset(code: str | Sequence[str]) -> tuple[int, ...]:
    """Subset (sorted indices) from a code like "T1c+T2" or "t1ce,flair", or a list of names."""
    if isinstance(code, str):
        parts = [p for p in code.replace(",", "+").split("+") if p.strip()]
    else:
        parts = list(code)
    if not parts:
        raise ValueError(
            f"Empty modality subset {code!r}: name at least one of {', '.join(MODALITIES)}, "
            "joined by '+', e.g. 'T1c+FLAIR'.")
    idx = [modality_index(p) for p in parts]
    if len(set(idx)) != len(idx):
        raise ValueError(f"Modality subset {code!r} names a modality twice.")
    return tuple(sorted(idx))


def subset_codes(values: Sequence[str], flag: str = "subsets",
                 paper_order: bool = False) -> tuple[str, ...]:
    """Canonical codes of a flag's subset values: ["all"] gives the 15.

    Args:
        values: subset codes such as "T1c+FLAIR", or ["all"].
        flag: the flag's name, for the error.
        paper_order: sort into the paper's order and drop repeats (else as given).

    Returns:
        The codes, e.g. ("T1c", "T1c+FLAIR").

    Raises:
        ValueError: naming the flag, the bad code and the known codes.
    """
    if list(values) == ["all"]:
        return tuple(SUBSET_CODES)
    codes = []
    for value in values:
        try:
            codes.append(subset_code(parse_subset(value)))
        except ValueError as err:
            raise ValueError(f"--{flag}: {err} Known codes: {', '.join(SUBSET_CODES)}, or "
                             "all.") from None
    if paper_order:
        return tuple(c for c in SUBSET_CODES if c in set(codes))
    return tuple(codes)


def subset_mask(subset: Iterable[int]) -> np.ndarray:
    """float32 [4] with 1 at the subset's modalities."""
    mask = np.zeros(NUM_MODALITIES, np.float32)
    mask[list(subset)] = 1.0
    return mask


def subset_matrix() -> np.ndarray:
    """float32 [15, 4]: row s is the mask of SUBSETS[s]."""
    return np.stack([subset_mask(s) for s in SUBSETS])


def subset_index(subset: Iterable[int]) -> int:
    """Row of a subset in SUBSETS."""
    return SUBSETS.index(tuple(sorted(subset)))


def validate_subset_probabilities(probs: Sequence[float]) -> np.ndarray:
    """Checks an explicit probability table over the 15 subsets; returns it normalised."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (NUM_SUBSETS,):
        raise ValueError(
            f"Subset probabilities must have {NUM_SUBSETS} entries, one per subset in the order "
            f"{', '.join(SUBSET_CODES)}; got shape {p.shape}.")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            f"Subset probabilities must be finite, non-negative and not all zero; got {p.tolist()}.")
    return p / p.sum()


# ---------------------------------------------------------------- labels and regions

CLASS_NAMES = ("background", "necrotic_core", "oedema", "enhancing")
NUM_CLASSES = len(CLASS_NAMES)

# On-disk label value of each training class, per convention.
LABEL_CONVENTIONS: dict[str, tuple[int, int, int, int]] = {
    "brats2018": (0, 1, 2, 4),   # BraTS 2018-2021
    "brats2023": (0, 1, 2, 3),   # BraTS 2023 (GLI)
}

# Training classes making up each evaluation region.
REGIONS: dict[str, tuple[int, ...]] = {
    "whole_tumour": (1, 2, 3),
    "tumour_core": (1, 3),
    "enhancing": (3,),
}
REGION_SHORT = {"whole_tumour": "WT", "tumour_core": "TC", "enhancing": "ET"}


def _convention(name: str) -> tuple[int, ...]:
    if name not in LABEL_CONVENTIONS:
        raise ValueError(
            f"Unknown label convention {name!r}: expected one of {', '.join(LABEL_CONVENTIONS)}.")
    return LABEL_CONVENTIONS[name]


def to_training_labels(label: np.ndarray, convention: str = "brats2018",
                       source: str = "label") -> np.ndarray:
    """On-disk labels -> training labels 0..3 (uint8). Values outside the convention are an error."""
    values = _convention(convention)
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer):
        rounded = np.rint(label)
        if not np.all(rounded == label):
            raise ValueError(f"{source}: label values must be integers; found non-integer values.")
        label = rounded.astype(np.int64)
    lut_size = max(values) + 1
    present = np.unique(label)
    bad = [int(v) for v in present if v < 0 or v >= lut_size or v not in values]
    if bad:
        raise ValueError(
            f"{source}: label values {bad} are outside the {convention} convention {list(values)}. "
            "Check the dataset's label convention (BraTS 2018-2021 use 0/1/2/4, 2023 uses 0/1/2/3).")
    lut = np.zeros(lut_size, np.uint8)
    for cls, v in enumerate(values):
        lut[v] = cls
    return lut[label]


def from_training_labels(label: np.ndarray, convention: str = "brats2018") -> np.ndarray:
    """Training labels 0..3 -> on-disk label values of the convention (uint8)."""
    values = np.asarray(_convention(convention), np.uint8)
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= NUM_CLASSES):
        raise ValueError(f"Training labels must lie in 0..{NUM_CLASSES - 1}.")
    return values[label.astype(np.int64)]


def region_masks(training_label: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the three regions from training labels 0..3."""
    label = np.asarray(training_label)
    return {name: np.isin(label, classes) for name, classes in REGIONS.items()}
