import numpy as np
import pytest

from hved_tf.evaluation import metrics


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


# ------------------------------------------------------------------ HD95 and friends
from scipy import ndimage  # noqa: E402

from hved_tf.evaluation.metrics import (empty_penalty, hd95, image_metrics, region_metrics,  # noqa: E402
                             sensitivity, specificity, surface, wilcoxon_p)


def reference_hd95(pred, truth, spacing):
    """Independent: surfaces by scipy erosion, distances by scipy's Euclidean distance transform."""
    def surf(m):
        return m & ~ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(3, 1),
                                           border_value=0)
    sp, st = surf(pred), surf(truth)
    to_truth = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    return np.percentile(np.concatenate([to_truth, to_pred]), 95)


def test_hd95_hand_computed_cubes():
    truth = np.zeros((20, 20, 20), bool)
    truth[5:10, 5:10, 5:10] = True
    assert hd95(truth, truth) == 0.0
    shifted = np.roll(truth, 3, axis=0)
    # Every surface voxel of either cube is at most 3 voxels from the other's surface, and
    # the faces perpendicular to the shift are all exactly 3 away: HD95 = 3 voxels.
    assert hd95(shifted, truth) == pytest.approx(3.0)
    assert hd95(shifted, truth, spacing=(2.0, 1.0, 1.0)) == pytest.approx(6.0)


def test_hd95_single_voxels():
    a = np.zeros((10, 10, 10), bool)
    b = a.copy()
    a[1, 1, 1] = True
    b[4, 5, 1] = True
    assert hd95(a, b) == pytest.approx(5.0)              # 3-4-5 triangle


def test_hd95_empty_cases():
    empty = np.zeros((240, 240, 155), bool)
    full = empty.copy()
    full[100:110, 100:110, 70:80] = True
    assert hd95(empty, empty) == 0.0
    assert hd95(empty, full) == pytest.approx(373.128, abs=1e-3)
    assert hd95(full, empty) == pytest.approx(empty_penalty((240, 240, 155)))


@pytest.mark.parametrize("seed", range(4))
def test_hd95_matches_distance_transforms(seed):
    rng = np.random.default_rng(seed)
    shape = (18, 21, 16)
    pred = ndimage.binary_opening(rng.random(shape) > 0.6)
    truth = ndimage.binary_opening(rng.random(shape) > 0.55)
    spacing = (1.0, 1.5, 2.5)
    assert surface(pred).sum() > 10 and surface(truth).sum() > 10
    assert hd95(pred, truth, spacing) == pytest.approx(reference_hd95(pred, truth, spacing),
                                                       rel=1e-9)


def test_sensitivity_specificity_hand_computed():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    assert sensitivity(pred, truth) == pytest.approx(0.75)
    assert specificity(pred, truth) == pytest.approx(5 / 6)
    assert np.isnan(sensitivity(pred, np.zeros(10, bool)))


def test_region_metrics_keys_and_perfect_case():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[3:8, 3:8, 3:8] = 2
    labels[4:6, 4:6, 4:6] = 3
    out = region_metrics(labels, labels)
    assert set(out) == {"whole_tumour", "tumour_core", "enhancing"}
    for values in out.values():
        assert values["dice"] == 1.0 and values["hd95"] == 0.0
    assert out["enhancing"]["sensitivity"] == 1.0


def test_image_metrics_against_closed_form_psnr():
    rng = np.random.default_rng(0)
    truth = rng.random((16, 16, 16))
    noisy = truth + 0.1
    fg = np.ones(truth.shape, bool)
    out = image_metrics(noisy, truth, fg)
    data_range = truth.max() - truth.min()
    assert out["psnr"] == pytest.approx(10 * np.log10(data_range ** 2 / 0.01), rel=1e-9)
    assert image_metrics(truth, truth, fg)["ssim"] == pytest.approx(1.0)
    assert out["ssim"] < 1.0


def test_wilcoxon_p():
    a = np.arange(20, dtype=float)
    assert wilcoxon_p(a, a) == 1.0
    assert wilcoxon_p(a, a + 1.0) < 0.001
    assert np.isnan(wilcoxon_p([1.0], [2.0]))


def test_brasyn_scores_clip_scale_and_split_the_ssim_by_the_tumour():
    from hved_tf.evaluation.metrics import brasyn_metrics, clip_and_scale

    rng = np.random.default_rng(3)
    real = rng.normal(100.0, 20.0, size=(30, 30, 30))
    brain = np.zeros(real.shape, bool)
    brain[3:27, 3:27, 3:27] = True
    tumour = np.zeros(real.shape, bool)
    tumour[9:21, 9:21, 9:21] = True
    same = brasyn_metrics(real, real, brain, tumour)
    assert same["brasyn_mse"] == 0.0 and same["brasyn_psnr"] == float("inf")
    assert same["brasyn_ssim_tumour"] == pytest.approx(1.0)
    assert same["brasyn_ssim_healthy"] == pytest.approx(1.0)
    # A linear rescaling is undone by the percentile clipping and scaling.
    scaled = brasyn_metrics(3.0 * real + 7.0, real, brain, tumour)
    assert scaled["brasyn_mse"] == pytest.approx(0.0, abs=1e-20)
    # Noise inside the tumour only: its SSIM drops, the healthy one far less.
    noisy = real.copy()
    noisy[tumour] = rng.normal(100.0, 20.0, size=tumour.sum())
    scores = brasyn_metrics(noisy, real, brain, tumour)
    assert scores["brasyn_ssim_tumour"] < 0.5 < 0.9 < scores["brasyn_ssim_healthy"]
    lo, hi = np.percentile(noisy[brain], [0.5, 99.5])       # each volume its own percentiles
    s = np.clip((noisy - lo) / (hi - lo), 0, 1)
    lo, hi = np.percentile(real[brain], [0.5, 99.5])
    t = np.clip((real - lo) / (hi - lo), 0, 1)
    assert scores["brasyn_mse"] == pytest.approx(np.mean((s[brain] - t[brain]) ** 2))
    assert scores["brasyn_psnr"] == pytest.approx(10 * np.log10(1 / scores["brasyn_mse"]))
    np.testing.assert_allclose(clip_and_scale(real, brain)[brain].min(), 0.0)


def test_hd95_penalty_of_one_empty_mask_can_be_chosen():
    from hved_tf.evaluation.metrics import hd95, region_metrics
    pred = np.zeros((10, 10, 10), bool)
    truth = pred.copy()
    truth[2:4, 2:4, 2:4] = True
    assert hd95(pred, truth) == pytest.approx(np.sqrt(300.0))       # the grid's diagonal
    assert hd95(pred, truth, penalty=374.0) == 374.0
    assert hd95(pred, pred, penalty=374.0) == 0.0
    labels = truth.astype(np.uint8) * 2                              # oedema only
    out = region_metrics(pred.astype(np.uint8), labels, hd95_penalty=374.0)
    assert out["whole_tumour"]["hd95"] == 374.0 and out["enhancing"]["hd95"] == 0.0
