"""Bootstrap intervals and seed summaries (hved_tf.evaluation.statistics), against cases
worked by hand and the normal approximation of a mean's interval."""
import numpy as np
import pytest

from hved_tf.evaluation import statistics


def test_two_subjects_interval_is_the_whole_range():
    # Means of two draws from {0, 1}: 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles are 0 and 1.
    assert statistics.subject_ci([0.0, 1.0]) == (0.0, 1.0)


def test_constant_scores_have_a_zero_width_interval():
    assert statistics.subject_ci(np.full((3, 7), 0.8)) == pytest.approx((0.8, 0.8))
    assert statistics.seed_subject_ci(np.full((3, 7), 0.8)) == pytest.approx((0.8, 0.8))


def test_subject_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(3)
    scores = rng.normal(0.7, 0.1, 400)
    half = 1.96 * scores.std(ddof=1) / np.sqrt(scores.size)
    low, high = statistics.subject_ci(scores)
    assert low == pytest.approx(scores.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(scores.mean() + half, abs=0.15 * half)


def test_subject_interval_averages_the_seeds_first():
    # Two seeds that disagree by a constant: the subjects' seed averages are all 0.5.
    matrix = np.stack([np.zeros(20), np.ones(20)])
    assert statistics.subject_ci(matrix) == pytest.approx((0.5, 0.5))
    low, high = statistics.seed_subject_ci(matrix)
    assert low == pytest.approx(0.0) and high == pytest.approx(1.0)   # seeds resampled


def test_summary_per_seed_sd_and_worst():
    matrix = [[0.8, 0.6], [0.9, 0.9], [0.5, 0.7]]    # seed means 0.7, 0.9, 0.6
    s = statistics.summarise(matrix, resamples=200)
    assert s.per_seed == pytest.approx((0.7, 0.9, 0.6))
    assert s.mean == pytest.approx(0.7333333333)
    assert s.sd == pytest.approx(np.sqrt(((0.7 - 0.73333) ** 2 + (0.9 - 0.73333) ** 2
                                          + (0.6 - 0.73333) ** 2) / 2), abs=1e-4)
    assert s.worst == pytest.approx(0.6)


def test_paired_difference_and_refusals():
    a = np.array([[0.5, 0.6, 0.7], [0.4, 0.5, 0.9]])
    d = statistics.paired(a, a + 0.1, resamples=500)
    assert d.per_seed == pytest.approx((0.1, 0.1))
    assert d.ci_subjects == pytest.approx((0.1, 0.1))
    with pytest.raises(ValueError, match="same seeds and subjects"):
        statistics.paired(a, a[:, :2])
    with pytest.raises(ValueError, match="finite"):
        statistics.summarise([[0.5, np.nan]])
