import numpy as np
import pytest

from hved_tf.preprocessing import crop, crop_box, uncrop


def test_release_rule_by_hand():
    volume = np.zeros((240, 240, 155), np.float32)
    volume[50:150, 60:201, 10:110] = 1          # extents 100, 141, 100
    box = crop_box(volume)
    # 100 < 128: margin (128 - 100) // 2 = 14 below, 15 above -> [36, 165), 129 wide.
    assert box.lo == (36, 60, 0) and box.hi == (165, 201, 129)
    # z: [10, 110) -> [-4, 125) slides to [0, 129).
    assert box.shape == (129, 141, 129)


def test_box_clipped_to_small_volumes_and_multimodal():
    volume = np.zeros((40, 50, 30, 4), np.float32)
    volume[5:10, 20:30, 3:4, 2] = 7
    box = crop_box(volume)
    assert box.lo == (0, 0, 0) and box.hi == (40, 50, 30)
    assert crop_box(np.zeros((20, 20, 20))).hi == (20, 20, 20)   # all zero: whole volume


@pytest.mark.parametrize("min_extent", [4, 128])
def test_crop_uncrop_identity(min_extent):
    rng = np.random.default_rng(0)
    volume = np.zeros((30, 31, 29, 2), np.float32)
    volume[7:20, 3:25, 11:17] = rng.normal(size=(13, 22, 6, 2))
    box = crop_box(volume, min_extent=min_extent)
    restored = uncrop(crop(volume, box), box)
    np.testing.assert_array_equal(restored, volume)
    with pytest.raises(ValueError):
        uncrop(np.zeros((3, 3, 3)), box)
