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


def _release_box_in_file_order(disk):
    """The release's rule on the array as stored (written from its description: planes not all
    zero give [lo, hi); under 128 it grows by m below and m + 1 above; it slides up from a
    negative start; slicing clips the end)."""
    lo, hi = [], []
    for axis in range(3):
        planes = np.flatnonzero(np.any(disk != 0, axis=tuple(a for a in range(3) if a != axis)))
        a, b = int(planes[0]), int(planes[-1]) + 1
        if b - a < 128:
            m = (128 - (b - a)) // 2
            a, b = a - m, b + m + 1
        if a < 0:
            a, b = 0, b - a
        lo.append(a)
        hi.append(min(b, disk.shape[axis]))
    return lo, hi


@pytest.mark.parametrize("lps", [True, False])
def test_the_box_is_the_releases_file_order_box_for_lps_and_ras_files(tmp_path, lps):
    from hved_tf.io.nifti import load_nifti, write_nifti
    from hved_tf.data.synthetic import phantom_affine
    disk = np.zeros((160, 170, 150), np.float32)
    disk[50:87, 20:65, 40:91] = 1.0                  # odd extents under 128: 37, 45, 51
    path = tmp_path / "t1.nii.gz"
    write_nifti(path, disk, phantom_affine(disk.shape, lps))
    ras, geometry = load_nifti(path)
    assert geometry.ras_flips == ((True, True, False) if lps else (False, False, False))
    box = crop_box(ras, flipped=geometry.ras_flips)
    lo, hi = _release_box_in_file_order(disk)
    # Hand-checked along x: [50, 87) grows by 45 and 46 to [5, 133) in the file.
    assert (lo[0], hi[0]) == (5, 133)
    # The same voxels: the release's crop, reoriented, is this crop of the RAS volume.
    release_crop = disk[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if lps:
        release_crop = release_crop[::-1, ::-1]
        assert (box.lo[0], box.hi[0]) == (160 - 133, 160 - 5)
        # The rule applied in RAS order would have put the extra voxel on the other side.
        assert crop_box(ras).lo[0] == box.lo[0] + 1
    np.testing.assert_array_equal(crop(ras, box), release_crop)
