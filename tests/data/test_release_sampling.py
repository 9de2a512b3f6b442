"""The release's training recipe: windows drawn from the padded volume (inclusion probability
of a voxel against its closed form), per-axis zooms drawn independently and uniformly, cubic
zoom of images and nearest zoom of labels as scipy computes them, padding with the channel
minimum."""
import types

import numpy as np
import pytest
from scipy import ndimage, stats

from hved_tf.config import PipelineConfig
from hved_tf.data.pipeline import WindowSource, read_region
from hved_tf.data.visit_augment import (VisitTransform, draw_visit_transform, pad_line_minimum,
                                        pad_volume, transform_volume)


def inclusion_closed_form(length, window, padding, index):
    """P(voxel `index` of an axis of `length` lies in a window whose start is uniform over the
    (length + 2 padding - window + 1) positions of the padded axis), counted by hand."""
    positions = length + 2 * padding - window + 1
    i = index + padding
    first, last = max(0, i - window + 1), min(i, positions - 1)
    return max(0, last - first + 1) / positions


def test_the_closed_form_gives_the_issues_figures():
    assert inclusion_closed_form(140, 112, 10, 0) == pytest.approx(0.224, abs=5e-4)
    assert inclusion_closed_form(140, 112, 0, 0) == pytest.approx(0.034, abs=5e-4)
    assert inclusion_closed_form(170, 112, 10, 0) == pytest.approx(0.139, abs=5e-4)
    assert inclusion_closed_form(128, 112, 10, 0) == pytest.approx(0.297, abs=5e-4)


def _subject(shape):
    label = np.zeros(shape, np.uint8)
    label[shape[0] // 2, shape[1] // 2, shape[2] // 2] = 2
    image = np.random.default_rng(0).normal(size=shape + (4,)).astype(np.float32)
    return types.SimpleNamespace(id="s", image=image, label=label,
                                 available=np.ones(4, np.float32),
                                 class_indices=[np.flatnonzero(label == c) for c in range(4)],
                                 minimum=image.reshape(-1, 4).min(0))


@pytest.mark.parametrize("augmentation", ["window", "release"])
def test_padded_uniform_sampler_includes_edge_voxels_as_the_closed_form_says(augmentation):
    length, window, padding = 60, 48, 10
    config = PipelineConfig(window=(window, 16, 16), windows_per_volume=50, sampler="uniform",
                            volume_padding=padding, spatial_augmentation=augmentation,
                            scaling=0.0, flip_axes=(), seed=3)
    source = WindowSource([_subject((length, 20, 20))], config)
    corners = []
    for v in range(160):                                                       # 8000 windows
        corners.append(source.plan(v)[2][:, 0])
        source._visits.clear()             # windows never read here: drop the visit's volume
    corners = np.concatenate(corners)
    n = len(corners)
    for index in (0, 3, 10, 30, length - 1):
        i = index + padding
        observed = np.mean((corners <= i) & (i < corners + window))
        expected = inclusion_closed_form(length, window, padding, index)
        sigma = np.sqrt(expected * (1 - expected) / n)
        assert abs(observed - expected) < 4 * sigma + 1e-9, (index, observed, expected)


def test_padded_windows_hold_the_channel_minimum_and_label_0_outside_the_volume():
    volume = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) + 10
    minimum = volume.reshape(-1, 2).min(0)
    window = read_region(volume, (0, 0, 0), (4, 5, 6), padding=1, pad_value=minimum)
    expected = pad_volume(volume, 1, minimum)                  # [4, 5, 6, 2]
    np.testing.assert_array_equal(window, expected)
    assert window[0, 0, 0, 0] == minimum[0] and window[0, 0, 0, 1] == minimum[1]
    np.testing.assert_array_equal(window[1:3, 1:4, 1:5], volume)
    label = np.ones((2, 3, 4), np.uint8)
    padded_label = read_region(label, (0, 0, 0), (4, 5, 6), padding=1, pad_value=0)
    assert padded_label.sum() == label.sum() and padded_label[0, 0, 0] == 0
    # Larger than the padded volume: padded at the end with the same values.
    big = read_region(volume, (0, 0, 0), (6, 5, 6), padding=1, pad_value=minimum)
    np.testing.assert_array_equal(big[:4], expected)
    assert np.all(big[4:, ..., 0] == minimum[0])


def test_without_padding_reading_is_the_plain_window():
    rng = np.random.default_rng(1)
    volume = rng.normal(size=(9, 8, 7, 2)).astype(np.float32)
    np.testing.assert_array_equal(read_region(volume, (2, 1, 3), (4, 4, 4)),
                                  volume[2:6, 1:5, 3:7])
    with_margin = read_region(volume, (0, 0, 0), (4, 4, 4), margin=(1, 1, 1))
    np.testing.assert_array_equal(with_margin, np.pad(volume[:5, :5, :5],
                                                      ((1, 0), (1, 0), (1, 0), (0, 0)),
                                                      mode="edge"))


def test_per_axis_zooms_are_independent_and_uniform():
    rng = np.random.default_rng(7)
    draws = [draw_visit_transform(rng, 0.1, (0, 1, 2)) for _ in range(3000)]
    zooms = np.array([d.zooms for d in draws])
    flips = np.array([d.flips for d in draws], float)
    assert zooms.min() >= 0.9 and zooms.max() <= 1.1
    for axis in range(3):
        assert stats.kstest(zooms[:, axis], stats.uniform(0.9, 0.2).cdf).pvalue > 1e-3
        assert abs(flips[:, axis].mean() - 0.5) < 4 * np.sqrt(0.25 / len(draws))
    correlation = np.corrcoef(np.concatenate([zooms, flips], axis=1).T)
    off_diagonal = correlation[~np.eye(6, dtype=bool)]
    assert np.abs(off_diagonal).max() < 4 / np.sqrt(len(draws))
    no_flip_axes = [draw_visit_transform(rng, 0.1, ()).flips for _ in range(50)]
    assert not np.any(no_flip_axes)


def test_cubic_zoom_of_images_and_nearest_zoom_of_labels_equal_scipys():
    rng = np.random.default_rng(2)
    image = rng.normal(size=(17, 13, 11, 2)).astype(np.float32)
    label = rng.integers(0, 4, size=(17, 13, 11)).astype(np.uint8)
    transform = VisitTransform(zooms=(1.08, 0.93, 1.0), flips=(False, True, False))
    out_image, out_label = transform_volume(image, label, transform)
    for c in range(2):
        expected = ndimage.zoom(image[:, ::-1, :, c], transform.zooms, order=3)   # flip first
        np.testing.assert_allclose(out_image[..., c], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out_label,
                                  ndimage.zoom(label[:, ::-1], transform.zooms, order=0))
    assert out_image.shape[:3] == transform.output_shape(image.shape[:3]) == (18, 12, 11)
    assert set(np.unique(out_label)) <= set(np.unique(label))


def test_release_windows_come_from_the_visits_transformed_volume():
    """Every window of a visit is a crop of one padded, zoomed, flipped volume."""
    subject = _subject((30, 26, 22))
    config = PipelineConfig(window=(16, 16, 16), windows_per_volume=4, sampler="uniform",
                            volume_padding=5, spatial_augmentation="release", scaling=0.1,
                            flip_axes=(0, 1, 2), seed=0)
    source = WindowSource([subject], config)
    k, visits, corners, _ = source.plan(0)
    rng = np.random.default_rng([0, 2, 0])
    transform = draw_visit_transform(rng, 0.1, (0, 1, 2))
    expected_image, expected_label = transform_volume(
        pad_line_minimum(subject.image, 5), pad_line_minimum(subject.label, 5), transform)
    for kk, visit, corner in zip(k, visits, corners):
        image, label, available = source.extract(kk, visit, corner)
        sl = tuple(slice(c, c + 16) for c in corner)
        np.testing.assert_array_equal(image, expected_image[sl])
        np.testing.assert_array_equal(label[..., 0], expected_label[sl])
    assert not source._visits           # released after its last window
