"""Sliding-window inference against predictors whose whole-volume output is known exactly."""
import numpy as np
import pytest
from scipy import ndimage

from hved_tf.config import InferenceOptions
from hved_tf.inference.windows import choose_window as choose_window_tf
from hved_tf.inference.windows import (blend_weights, entropy, plan_windows,
                                       sliding_window, Tiling)


def plus_one(windows):
    return {"out": windows + 1.0}


def make_conv(kernel):
    """A translation-equivariant predictor: 3-D correlation with zero padding ('same')."""
    def predict(windows):
        out = np.stack([ndimage.correlate(w[..., 0], kernel, mode="constant", cval=0.0)
                        for w in windows])
        return {"out": out[..., None]}
    return predict


SHAPES = [(17, 13, 11), (23, 9, 31)]
SETTINGS = [  # window, border, overlap, blend, batch
    ((8, 8, 8), 0, 0.0, "constant", 1),
    ((8, 8, 8), 0, 0.5, "gaussian", 3),
    ((16, 8, 8), 2, 0.0, "constant", 2),
    ((8, 16, 8), 2, 0.25, "gaussian", 4),
    ((64, 64, 64), 0, 0.5, "constant", 1),     # larger than the volume: shrunk
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window,border,overlap,blend,batch", SETTINGS)
def test_plus_one_is_reproduced(shape, window, border, overlap, blend, batch):
    rng = np.random.default_rng(0)
    volume = rng.normal(size=shape + (2,)).astype(np.float32)
    out = sliding_window(plus_one, volume, window, Tiling(border, overlap, blend, batch),
                         pad_value=-5.0, multiple=4)["out"]
    assert out.shape == volume.shape
    np.testing.assert_allclose(out, volume + 1.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window,overlap,blend", [((8, 8, 8), 0.0, "constant"),
                                                   ((12, 8, 16), 0.5, "gaussian"),
                                                   ((16, 16, 8), 0.3, "constant")])
def test_convolution_with_border_is_reproduced(shape, window, overlap, blend):
    rng = np.random.default_rng(1)
    volume = rng.normal(size=shape + (1,)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3)).astype(np.float32)
    whole = ndimage.correlate(volume[..., 0], kernel, mode="constant", cval=0.0)
    # A radius-1 kernel is polluted by the window edge on one voxel: a border of 1 hides it.
    out = sliding_window(make_conv(kernel), volume, window,
                         Tiling(border=1, overlap=overlap, blend=blend, batch_size=2),
                         pad_value=0.0)["out"][..., 0]
    np.testing.assert_allclose(out, whole, rtol=0, atol=1e-4)


def test_convolution_without_border_is_not_reproduced():
    """The check above can fail: without a border the window edges differ."""
    rng = np.random.default_rng(2)
    volume = rng.normal(size=(20, 20, 20, 1)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3)).astype(np.float32)
    whole = ndimage.correlate(volume[..., 0], kernel, mode="constant", cval=0.0)
    out = sliding_window(make_conv(kernel), volume, (8, 8, 8), Tiling(border=0))["out"][..., 0]
    assert np.abs(out - whole).max() > 1e-2


def test_plan_covers_every_voxel_and_respects_multiple():
    plan = plan_windows((45, 30, 7), (16, 16, 16), border=3, overlap=0.5, multiple=8)
    assert plan.window == (16, 16, 16)
    for size, starts, interior in zip((45, 30, 7), plan.starts, plan.interior):
        covered = np.zeros(size, bool)
        for s in starts:
            covered[s:s + interior] = True
        assert covered.all()
        assert starts[-1] + interior >= size
    small = plan_windows((10, 10, 10), (64, 64, 64), border=2, multiple=8)
    assert small.window == (16, 16, 16)          # 10 + 2*2 rounded up to a multiple of 8
    assert small.count == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="multiple of 8"):
        plan_windows((20, 20, 20), (12, 16, 16), multiple=8)
    with pytest.raises(ValueError, match="border"):
        plan_windows((20, 20, 20), (8, 8, 8), border=4)
    with pytest.raises(ValueError, match="overlap"):
        plan_windows((20, 20, 20), (8, 8, 8), overlap=1.0)
    with pytest.raises(ValueError, match="blend"):
        blend_weights((4, 4, 4), "cosine")


def test_gaussian_weights_peak_at_the_centre():
    w = np.asarray(blend_weights((9, 7, 5), "gaussian"))
    assert w[4, 3, 2] == pytest.approx(1.0)
    assert w.min() >= 1e-3 and w[0, 0, 0] < w[4, 3, 2]


def test_entropy_closed_form():
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(entropy(p), [0.0, np.log(4), np.log(2)], rtol=1e-6)


def test_auto_window_is_the_whole_volume_within_the_budget():
    def choose_window(shape, options, multiple):
        return tuple(int(w) for w in choose_window_tf(shape, options, multiple,
                                                      fallback=(32, 32, 32)).numpy())

    auto = InferenceOptions(window=None, max_voxels=64 ** 3)
    assert choose_window((50, 61, 33), auto, 8) == (56, 64, 40)
    assert choose_window((70, 70, 70), auto, 8) == (32, 32, 32)       # over the budget
    fixed = InferenceOptions(window=(16, 16, 16))
    assert choose_window((50, 61, 33), fixed, 8) == (16, 16, 16)
    # BraTS' cropped brains fit the default budget.
    assert choose_window((197, 196, 129), InferenceOptions(), 8) == (200, 200, 136)
