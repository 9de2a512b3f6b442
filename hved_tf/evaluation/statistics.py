"""Statistics for comparing trained models: bootstrap confidence intervals over test subjects
(and over training seeds), summaries over seeds, and paired differences.

A quality figure of this project is a matrix `values[seed, subject]`: one training run per seed,
each scored on the same fixed test subjects. Two sources of noise sit in it: which subjects the
test set happened to draw, and which run a seed happened to give. `subject_ci` resamples the
subjects only (the seeds averaged first): the uncertainty of the test set. `seed_subject_ci`
resamples both, seeds and subjects (a two-level bootstrap): the uncertainty of a recipe's
expected figure, the one that decides whether a recipe change is real. For two recipes scored
on the same seeds and subjects, `paired` works on their differences, which cancels what the
two share (the subjects' difficulty, the seeds' data).

Pure NumPy; percentile intervals (Efron & Tibshirani 1993, ch. 13) from a seeded generator, so
that a report is reproducible.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence, Union

import numpy as np

Scores = Union[np.ndarray, Sequence[Any]]     # [seeds, subjects] (or [subjects]) scores
LEVEL = 0.95
RESAMPLES = 10_000


def _matrix(values) -> np.ndarray:
    """[seeds, subjects] float64; a 1-D input is one seed. NaN (a subject not scored) is
    refused: every seed must be scored on every subject for the pairing to hold."""
    array = np.asarray(values, np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"Expected a [seeds, subjects] matrix of scores, got shape "
                         f"{array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("Scores must be finite for every seed and subject (a missing score "
                         "would break the pairing).")
    return array


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def subject_ci(values: Scores, level: float = LEVEL, resamples: int = RESAMPLES,
               seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over subjects of the seed-averaged scores.

    Args:
        values: [seeds, subjects] (or [subjects]) scores.
        level: coverage of the interval.
        resamples: bootstrap draws.
        seed: the generator's seed (the interval is reproducible).

    Returns:
        (low, high).
    """
    per_subject = _matrix(values).mean(axis=0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, per_subject.size, (resamples, per_subject.size))
    return _interval(per_subject[draws].mean(axis=1), level)


def seed_subject_ci(values: Scores, level: float = LEVEL, resamples: int = RESAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """Two-level percentile bootstrap CI of the grand mean: seeds drawn with replacement, then
    subjects drawn with replacement (the same subjects for every drawn seed: they are one test
    set).

    Args:
        values: [seeds, subjects] scores.
        level: coverage of the interval.
        resamples: bootstrap draws.
        seed: the generator's seed.

    Returns:
        (low, high).
    """
    matrix = _matrix(values)
    n_seeds, n_subjects = matrix.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for k in range(resamples):
        rows = rng.integers(0, n_seeds, n_seeds)
        cols = rng.integers(0, n_subjects, n_subjects)
        means[k] = matrix[np.ix_(rows, cols)].mean()
    return _interval(means, level)


@dataclasses.dataclass(frozen=True)
class Summary:
    """One figure over seeds: each seed's mean over subjects, their mean, sample sd, worst
    (lowest) seed, and the two bootstrap intervals."""
    per_seed: tuple
    mean: float
    sd: float
    worst: float
    ci_subjects: tuple
    ci_seeds_subjects: tuple

    def as_dict(self) -> dict:
        """The summary as JSON-ready values.

        Returns:
            `dataclasses.asdict` of it.
        """
        return dataclasses.asdict(self)


def summarise(values: Scores, level: float = LEVEL, resamples: int = RESAMPLES) -> Summary:
    """The `Summary` of a [seeds, subjects] matrix (sd 0 for one seed).

    Args:
        values: [seeds, subjects] scores, higher is better.
        level: coverage of the intervals.
        resamples: bootstrap draws.

    Returns:
        Summary.
    """
    matrix = _matrix(values)
    per_seed = matrix.mean(axis=1)
    sd = float(per_seed.std(ddof=1)) if per_seed.size > 1 else 0.0
    return Summary(per_seed=tuple(float(v) for v in per_seed), mean=float(per_seed.mean()),
                   sd=sd, worst=float(per_seed.min()),
                   ci_subjects=subject_ci(matrix, level, resamples),
                   ci_seeds_subjects=seed_subject_ci(matrix, level, resamples))


def paired(a: Scores, b: Scores, level: float = LEVEL, resamples: int = RESAMPLES) -> Summary:
    """The `Summary` of b - a for two recipes scored on the same seeds and subjects.

    Args:
        a: [seeds, subjects] scores of the first recipe.
        b: the second's, in the same order.
        level: coverage of the intervals.
        resamples: bootstrap draws.

    Returns:
        Summary of the differences (its `worst` is the seed where b gained least).
    """
    a, b = _matrix(a), _matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"A paired comparison needs the same seeds and subjects on both "
                         f"sides, got {a.shape} and {b.shape} ([seeds, subjects]).")
    return summarise(b - a, level, resamples)
