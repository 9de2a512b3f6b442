"""Lesion-wise Dice and HD95 (BraTS 2023/2024) on hand-built volumes with known answers, and
against an independent computation (skimage labelling, dilation by explicit offsets, HD95 by
distance transforms) on random masks."""
import itertools

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label as sk_label

from hved_tf.evaluation.lesions import (MISS_HD95, PRESETS, lesion_scores,
                                        region_lesion_metrics)

SHAPE = (40, 40, 40)


def cube(corner, size=4, shape=SHAPE):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(c, c + size) for c in corner)] = True
    return mask


def test_two_lesions_one_missed():
    truth = cube((2, 2, 2)) | cube((30, 30, 30))
    s = lesion_scores(cube((2, 2, 2)), truth, threshold=50)
    assert len(s.lesions) == 2 and s.false_positives == 0
    assert s.dice == pytest.approx((1.0 + 0.0) / 2)
    assert s.hd95 == pytest.approx((0.0 + MISS_HD95) / 2)


def test_a_false_positive_counts_in_the_denominator():
    truth = cube((2, 2, 2))
    pred = cube((2, 2, 2)) | cube((30, 30, 30), size=2)
    s = lesion_scores(pred, truth, threshold=50)
    assert s.false_positives == 1 and len(s.lesions) == 1
    assert s.dice == pytest.approx(0.5) and s.hd95 == pytest.approx(MISS_HD95 / 2)


def test_lesions_whose_dilations_overlap_are_one_lesion():
    truth = cube((10, 10, 10)) | cube((18, 10, 10))          # a gap of 4 voxels along x
    pred = cube((10, 10, 10))                                   # finds the first only
    merged = lesion_scores(pred, truth, dilation=3, threshold=50)
    assert len(merged.lesions) == 1 and merged.lesions[0]["voxels"] == 128
    assert merged.dice == pytest.approx(2 * 64 / (64 + 128))
    apart = lesion_scores(pred, truth, dilation=1, threshold=50)
    assert len(apart.lesions) == 2
    assert apart.dice == pytest.approx(0.5)


def test_a_predicted_component_near_a_lesion_belongs_to_it():
    """Within the dilation: matched to the lesion (its Dice counts it), not a false positive."""
    truth = cube((10, 10, 10))
    pred = cube((10, 10, 10)) | cube((16, 10, 10), size=2)     # 2 voxels beyond the lesion
    s = lesion_scores(pred, truth, dilation=3, threshold=50)
    assert s.false_positives == 0
    assert s.dice == pytest.approx(2 * 64 / (64 + 64 + 8))


def test_lesions_at_or_under_the_threshold_leave_the_score():
    truth = cube((2, 2, 2)) | cube((30, 30, 30), size=2)       # 64 and 8 voxels
    s = lesion_scores(cube((2, 2, 2)), truth, threshold=8)
    assert s.small_lesions == 1 and len(s.lesions) == 1
    assert s.dice == 1.0 and s.hd95 == 0.0
    # A prediction on the small lesion only: not a false positive, the big one is missed.
    s = lesion_scores(cube((30, 30, 30), size=2), truth, threshold=8)
    assert s.false_positives == 0 and s.dice == 0.0 and s.hd95 == MISS_HD95


def test_both_empty_and_prediction_empty():
    empty = np.zeros(SHAPE, bool)
    s = lesion_scores(empty, empty)
    assert (s.dice, s.hd95) == (1.0, 0.0)
    s = lesion_scores(empty, cube((5, 5, 5)), threshold=10)
    assert (s.dice, s.hd95) == (0.0, MISS_HD95)
    s = lesion_scores(cube((5, 5, 5)), empty)
    assert (s.dice, s.hd95) == (0.0, MISS_HD95)


def test_presets_and_regions():
    assert (PRESETS["brats2023"].dilation, PRESETS["brats2023"].threshold) == (3, 50)
    p24 = PRESETS["brats2024"]
    assert p24.threshold_for("whole_tumour") == 20 and p24.threshold_for("enhancing") == 10
    labels = np.zeros(SHAPE, np.uint8)
    labels[5:12, 5:12, 5:12] = 2                    # oedema: whole tumour only
    labels[7:10, 7:10, 7:10] = 3                    # 27 enhancing voxels
    out = region_lesion_metrics(labels, labels, protocol=p24)
    assert out["whole_tumour"]["lesion_dice"] == 1.0 and out["whole_tumour"]["lesions"] == 1
    assert out["enhancing"]["lesions"] == 1         # 27 > 10
    out23 = region_lesion_metrics(labels, labels, protocol=PRESETS["brats2023"])
    assert out23["enhancing"]["lesions"] == 0       # 27 <= 50: left out, scored as perfect
    assert out23["enhancing"]["lesion_dice"] == 1.0


# ------------------------------------------------------------------ independent reference

def _dilate(mask, times):
    """Dilation by `times` 18-neighbourhood steps: the offsets d with max|d| <= times and
    |d|_1 <= 2 times (their Minkowski sum), applied by shifting."""
    out = mask.copy()
    r = times
    padded = np.pad(mask, r)
    for d in itertools.product(range(-r, r + 1), repeat=3):
        if sum(map(abs, d)) <= 2 * r:
            out |= padded[tuple(slice(r + o, r + o + s) for o, s in zip(d, mask.shape))]
    return out


def _surface(mask):
    return mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1),
                                          border_value=0)


def _hd95(a, b):
    sa, sb = _surface(a), _surface(b)
    to_b = ndimage.distance_transform_edt(~sb)[sa]
    to_a = ndimage.distance_transform_edt(~sa)[sb]
    return float(np.percentile(np.concatenate([to_b, to_a]), 95))


def _reference(pred, truth, dilation, threshold):
    if not pred.any() and not truth.any():
        return 1.0, 0.0
    regions = sk_label(_dilate(truth, dilation), connectivity=3)
    comps = sk_label(pred, connectivity=3)
    dices, hds, claimed = [], [], set()
    for k in range(1, regions.max() + 1):
        zone = regions == k
        lesion = truth & zone
        own = {int(c) for c in np.unique(comps[zone & pred])}
        claimed |= own
        if lesion.sum() <= threshold:
            continue
        if not own:
            dices.append(0.0)
            hds.append(MISS_HD95)
            continue
        matched = np.isin(comps, list(own))
        dices.append(2 * (matched & lesion).sum() / (matched.sum() + lesion.sum()))
        hds.append(_hd95(matched, lesion))
    fps = comps.max() - len(claimed)
    n = len(dices) + fps
    if n == 0:
        return 1.0, 0.0
    return (sum(dices) / n, (sum(hds) + MISS_HD95 * fps) / n)


@pytest.mark.parametrize("seed", range(6))
def test_random_masks_agree_with_an_independent_computation(seed):
    rng = np.random.default_rng(seed)
    shape = (36, 32, 30)
    blobs = ndimage.gaussian_filter(rng.random(shape), 2.0)
    truth = blobs > np.quantile(blobs, 0.93)
    noisy = ndimage.gaussian_filter(rng.random(shape), 1.5) * 0.6 + blobs * 0.4
    pred = noisy > np.quantile(noisy, 0.94)
    for dilation, threshold in ((3, 50), (1, 10), (0, 0)):
        ours = lesion_scores(pred, truth, dilation=dilation, threshold=threshold)
        ref_dice, ref_hd = _reference(pred, truth, dilation, threshold)
        assert ours.dice == pytest.approx(ref_dice, abs=1e-9), (dilation, threshold)
        assert ours.hd95 == pytest.approx(ref_hd, abs=1e-6), (dilation, threshold)
