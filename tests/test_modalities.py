import itertools
import math

import numpy as np
import pytest

from hved_tf import modalities as mod


def test_order_and_subsets():
    assert mod.MODALITIES == ("T1", "T1c", "T2", "FLAIR")
    assert len(mod.SUBSETS) == 15 and len(set(mod.SUBSETS)) == 15
    assert mod.SUBSETS[0] == (0,) and mod.SUBSETS[-1] == (0, 1, 2, 3)
    assert [len(s) for s in mod.SUBSETS] == sorted(len(s) for s in mod.SUBSETS)
    assert mod.SUBSET_CODES[mod.subset_index((1, 2))] == "T1c+T2"
    for code, subset in zip(mod.SUBSET_CODES, mod.SUBSETS):
        assert mod.parse_subset(code) == subset
    assert mod.parse_subset("flair,t1ce") == (1, 3)
    assert mod.subset_matrix().shape == (15, 4)


@pytest.mark.parametrize("bad", ["", "T1+T1", "T5", "T1+PD"])
def test_bad_subset_codes(bad):
    with pytest.raises(ValueError):
        mod.parse_subset(bad)


def test_draw_weights_closed_form():
    # The training step's draw weights (models/subsets.py), normalised: the paper's
    # P(s) = 1 / (n C(n, |s|)), computed here by hand.
    import tensorflow as tf

    from hved_tf.models.subsets import subset_weights
    w = subset_weights(tf.constant([[1, 1, 1, 1], [1, 0, 0, 1]], tf.float32)).numpy()
    p, q = w[0] / w[0].sum(), w[1] / w[1].sum()
    for subset, prob in zip(mod.SUBSETS, p):
        assert prob == pytest.approx(1 / 4 / math.comb(4, len(subset)))
    # Restricted to T1 and FLAIR: {T1}, {FLAIR} 1/4 each, {T1, FLAIR} 1/2.
    assert q[mod.subset_index((0,))] == pytest.approx(0.25)
    assert q[mod.subset_index((0, 3))] == pytest.approx(0.5)
    assert q.sum() == pytest.approx(1.0)


LABELS_2018 = np.array([0, 1, 2, 4, 4, 0])


def test_label_conventions_both_ways():
    train = mod.to_training_labels(LABELS_2018, "brats2018")
    np.testing.assert_array_equal(train, [0, 1, 2, 3, 3, 0])
    np.testing.assert_array_equal(mod.from_training_labels(train, "brats2018"), LABELS_2018)
    np.testing.assert_array_equal(mod.to_training_labels([0, 1, 2, 3], "brats2023"), [0, 1, 2, 3])
    np.testing.assert_array_equal(mod.from_training_labels([3], "brats2023"), [3])
    with pytest.raises(ValueError, match="outside the brats2018"):
        mod.to_training_labels([0, 3], "brats2018")
    with pytest.raises(ValueError, match="outside the brats2023"):
        mod.to_training_labels([4], "brats2023")
    with pytest.raises(ValueError, match="Unknown label convention"):
        mod.to_training_labels([0], "brats1999")


def test_regions():
    for convention, label in (("brats2018", [0, 1, 2, 4]), ("brats2023", [0, 1, 2, 3])):
        r = mod.region_masks(mod.to_training_labels(np.array(label), convention))
        np.testing.assert_array_equal(r["whole_tumour"], [0, 1, 1, 1])
        np.testing.assert_array_equal(r["tumour_core"], [0, 1, 0, 1])
        np.testing.assert_array_equal(r["enhancing"], [0, 0, 0, 1])


def test_modality_aliases():
    assert [mod.canonical_modality(a) for a in ("t1n", "t1ce", "t2w", "t2f", "Flair")] == [
        "T1", "T1c", "T2", "FLAIR", "FLAIR"]
    with pytest.raises(ValueError, match="Unknown modality"):
        mod.canonical_modality("dwi")
    assert list(itertools.chain(*mod.SUBSETS)).count(3) == 8


def test_subset_codes_of_a_flag():
    assert mod.subset_codes(["all"]) == tuple(mod.SUBSET_CODES)
    assert mod.subset_codes([]) == ()
    assert mod.subset_codes(["FLAIR+T1c", "t1ce,t1", "T1c"]) == ("T1c+FLAIR", "T1+T1c", "T1c")
    assert mod.subset_codes(["FLAIR+T1c", "T1c", "T1c"], paper_order=True) == ("T1c",
                                                                                 "T1c+FLAIR")
    with pytest.raises(ValueError, match="--test_subsets: .*Known codes"):
        mod.subset_codes(["T1+X"], "test_subsets")
