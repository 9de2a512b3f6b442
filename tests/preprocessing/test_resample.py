"""Resampling to another voxel size and between grids (hved_tf.preprocessing.resample), checked
against closed forms: linear functions of world coordinates are reproduced by linear and cubic
interpolation, grids keep their outer faces, labels on integer ratios keep their blocks."""
import numpy as np
import pytest

from hved_tf.preprocessing.resample import (SpacingChange, check_memory, check_spacing,
                                            image_resampled, onto_grid, same_spacing,
                                            spacing_change, world_box)

COEFFS = np.array([0.7, -0.3, 0.45])


def linear_field(affine, shape):
    """f(world) = COEFFS . world + 5 at every voxel centre of a grid."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    return (world @ COEFFS + 5.0).astype(np.float32)


def interior(shape, margin):
    return tuple(slice(margin, n - margin) for n in shape)


def deep_inside(change, margin=7):
    """Output voxels whose input coordinates lie `margin` input voxels inside every face
    (where the edge's boundary condition no longer reaches the cubic spline)."""
    coords = [(np.arange(m) + 0.5) * s - 0.5 for m, s in zip(change.out_shape, change.scale)]
    keep = [(c >= margin) & (c <= n - 1 - margin) for c, n in zip(coords, change.shape)]
    return np.ix_(*keep)


def test_same_spacing_and_no_change():
    assert same_spacing((1.0, 1.0, 1.0), (1.005, 0.995, 1.0))
    assert not same_spacing((1.0, 1.0, 1.0), (1.0, 1.0, 1.03))
    assert spacing_change((10, 10, 10), (2.0, 2.0, 2.0), (2.0, 2.0, 2.0)) is None
    assert spacing_change((10, 10, 10), (2.0, 2.0, 2.0), None) is None


def test_out_shape_and_faces():
    change = SpacingChange((20, 20, 8), (1.0, 1.0, 3.0), (2.0, 2.0, 2.0))
    assert change.out_shape == (10, 10, 12)
    assert change.out_zooms == (2.0, 2.0, 2.0)
    affine = np.array([[0.0, -1.0, 0.0, 30.0], [1.0, 0.0, 0.0, -12.0], [0.0, 0.0, 3.0, 4.0],
                       [0.0, 0.0, 0.0, 1.0]])
    lo, hi = world_box(affine, change.shape)
    lo2, hi2 = world_box(change.affine(affine), change.out_shape)
    np.testing.assert_allclose(lo, lo2, atol=1e-12)
    np.testing.assert_allclose(hi, hi2, atol=1e-12)
    # an odd ratio: 0.45 mm voxels over 101 of them, 1 mm asked: 45 voxels of 1.01 mm
    odd = SpacingChange((101, 7, 3), (0.45, 6.0, 1.0), (1.0, 1.0, 1.0))
    assert odd.out_shape == (45, 42, 3)
    np.testing.assert_allclose(odd.out_zooms, (0.45 * 101 / 45, 1.0, 1.0))


@pytest.mark.parametrize("order", [1, 3])
def test_linear_world_function_is_reproduced(order):
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = (-10, 4, 2)
    change = SpacingChange((30, 26, 16), (1.0, 1.0, 3.0), (2.0, 2.0, 1.5))
    out = change.to_model(linear_field(affine, change.shape), order)
    expected = linear_field(change.affine(affine), change.out_shape)
    assert out.shape == change.out_shape == (15, 13, 32)
    inner = deep_inside(change)
    np.testing.assert_allclose(out[inner], expected[inner], atol=1e-4)
    back = change.to_input(out, order)
    assert back.shape == change.shape
    inner = interior(change.shape, 10)
    np.testing.assert_allclose(back[inner], linear_field(affine, change.shape)[inner], atol=1e-4)


def test_channels_are_resampled_alike():
    affine = np.diag([0.5, 0.5, 5.0, 1.0])
    change = SpacingChange((40, 36, 6), (0.5, 0.5, 5.0), (1.0, 1.0, 1.0))
    field = linear_field(affine, change.shape)
    stacked = np.stack([field, 2 * field, np.zeros_like(field)], -1)
    out = change.to_model(stacked, 3)
    assert out.shape == (20, 18, 30, 3)
    np.testing.assert_allclose(out[..., 1], 2 * out[..., 0], rtol=1e-5, atol=1e-4)
    assert not np.any(out[..., 2])


def test_labels_keep_their_blocks_on_an_integer_ratio():
    blocks = np.random.default_rng(0).integers(0, 4, (5, 4, 3)).astype(np.uint8)
    fine = np.repeat(np.repeat(np.repeat(blocks, 2, 0), 2, 1), 2, 2)
    change = SpacingChange(fine.shape, (1.0, 1.0, 1.0), (2.0, 2.0, 2.0))
    coarse = change.to_model(fine, 0)
    assert coarse.dtype == np.uint8
    np.testing.assert_array_equal(coarse, blocks)
    np.testing.assert_array_equal(change.to_input(coarse, 0), fine)


def test_a_smooth_blob_survives_an_anisotropic_round_trip():
    shape, zooms = (64, 64, 48), (1.0, 1.0, 1.0)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    blob = np.exp(-np.sum((ijk - np.array([30, 34, 22])) ** 2, -1) / (2 * 8.0 ** 2))
    change = SpacingChange(shape, zooms, (0.5, 0.5, 5.0))
    assert change.out_shape == (128, 128, 10)
    back = change.to_input(change.to_model(blob, 3), 1)
    assert np.max(np.abs(back - blob)) < 0.05


def test_zero_background_stays_zero():
    volume = np.zeros((30, 30, 30), np.float32)
    volume[8:22, 8:22, 8:22] = 100.0
    change = SpacingChange(volume.shape, (1.0, 1.0, 1.0), (0.7, 1.3, 2.0))
    out = image_resampled(volume, change.to_model)
    plain = change.to_model(volume, 3)
    assert np.count_nonzero(np.abs(plain) > 0) > np.count_nonzero(out)     # the ringing
    nonzero = np.argwhere(out != 0)
    lo, hi = nonzero.min(0), nonzero.max(0)
    # the cube's faces at 7.5 and 21.5 input voxels: out index j sits at (j + .5) * s - .5
    for axis in range(3):
        s = change.scale[axis]
        assert abs((lo[axis] + 0.5) * s - 0.5 - 7.5) <= s and \
            abs((hi[axis] + 0.5) * s - 0.5 - 21.5) <= s
    assert np.all(out[tuple(slice(a + 2, b - 1) for a, b in zip(lo, hi))] > 50)


def test_onto_grid_follows_world_coordinates():
    theta = np.deg2rad(20)
    source = np.array([[np.cos(theta), -np.sin(theta), 0, -20], [np.sin(theta), np.cos(theta), 0, -15],
                       [0, 0, 5.0, -10], [0, 0, 0, 1]])
    target = np.diag([0.8, 0.8, 1.0, 1.0])
    target[:3, 3] = (-12, -10, 0)
    volume = linear_field(source, (40, 40, 16))
    out = onto_grid(volume, source, target, (30, 30, 40), 3)
    expected = linear_field(target, (30, 30, 40))
    lo, hi = world_box(source, (40, 40, 16))
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in (30, 30, 40)], indexing="ij"), -1)
    world = ijk @ target[:3, :3].T + target[:3, 3]
    inside_source = (np.linalg.inv(source)[:3, :3] @ world[..., None])[..., 0] + \
        np.linalg.inv(source)[:3, 3]
    deep = np.all((inside_source > 5) & (inside_source < np.array([34, 34, 10])), -1)
    assert deep.sum() > 500
    np.testing.assert_allclose(out[deep], expected[deep], atol=1e-3)
    outside = np.any((inside_source < -1) | (inside_source > np.array([40, 40, 16])), -1)
    assert outside.any() and np.all(out[outside] == 0)
    assert np.all(world[deep] >= lo) and np.all(world[deep] <= hi)


@pytest.mark.parametrize("zooms", [(1.0, 0.0, 1.0), (1.0, float("nan"), 1.0), (1.0, -2.0, 1.0)])
def test_a_damaged_voxel_size_is_refused(zooms):
    with pytest.raises(ValueError, match="t2.nii.gz: voxel sizes .* finite positive"):
        check_spacing(zooms, "t2.nii.gz")


def test_too_big_a_grid_is_refused_with_its_size_and_a_way_out():
    with pytest.raises(ValueError, match=r"1000x1000x1000 voxels \(.* GB .* Crop the image"):
        check_memory((1000, 1000, 1000), 4, "Subject P", available=8 * 2 ** 30)
    check_memory((100, 100, 100), 4, "Subject P", available=8 * 2 ** 30)
