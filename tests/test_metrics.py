import numpy as np
import pytest

from hved_tf import metrics


def test_dice_by_hand():
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    assert metrics.dice(a, b) == pytest.approx(0.5)
    assert metrics.dice(a, a) == 1.0
    assert metrics.dice(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    assert metrics.dice(np.zeros(4, bool), a) == 0.0
    with pytest.raises(ValueError):
        metrics.dice(a, np.zeros(3, bool))


def test_region_dice():
    truth = np.array([0, 1, 2, 3, 3])
    pred = np.array([0, 3, 2, 3, 0])
    d = metrics.region_dice(pred, truth)
    assert d["whole_tumour"] == pytest.approx(2 * 3 / (3 + 4))
    assert d["tumour_core"] == pytest.approx(2 * 2 / (2 + 3))
    assert d["enhancing"] == pytest.approx(2 * 1 / (2 + 2))
