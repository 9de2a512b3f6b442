"""The graph preprocessing (segment_raw's) against the NumPy chain it mirrors."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from hved_tf.data.synthetic import make_phantom
from hved_tf.modalities import MODALITIES
from hved_tf.serving import graph
from hved_tf.preprocessing.crop import crop_box
from hved_tf.preprocessing.histogram import mean_plus_mask, train_landmarks
from hved_tf.preprocessing.normalise import normalise_intensities


def phantom(shape=(40, 44, 36), seed=0):
    volumes, _ = make_phantom(shape, seed=[9, seed])
    return np.stack([volumes[m] for m in MODALITIES], axis=-1)


def test_crop_box_matches_numpy():
    image = np.zeros((150, 140, 130, 4), np.float32)
    image[20:60, 100:139, 5:9, 2] = 1.0
    box = crop_box(image)
    lo, hi = graph.crop_box(tf.constant(image))
    assert tuple(lo.numpy()) == box.lo and tuple(hi.numpy()) == box.hi
    small = np.zeros((30, 31, 32, 4), np.float32)
    small[3:5, 4:9, 10:20, 0] = 2.0
    box = crop_box(small)
    lo, hi = graph.crop_box(tf.constant(small))
    assert tuple(lo.numpy()) == box.lo and tuple(hi.numpy()) == box.hi


def test_pad_minimum_matches_numpy():
    x = np.random.default_rng(0).normal(size=(5, 6, 7, 2)).astype(np.float32)
    ref = np.pad(x, [(3, 3)] * 3 + [(0, 0)], mode="minimum")
    np.testing.assert_array_equal(graph.pad_minimum(tf.constant(x), 3).numpy(), ref)


def test_hole_filling_and_mean_plus_are_exact():
    rng = np.random.default_rng(1)
    for _ in range(3):
        mask = ndimage.binary_opening(rng.random((24, 20, 22)) > 0.35)
        np.testing.assert_array_equal(graph.fill_holes(tf.constant(mask)).numpy(),
                                      ndimage.binary_fill_holes(mask))
    shell = np.zeros((12, 12, 12), bool)
    shell[2:10, 2:10, 2:10] = True
    shell[4:8, 4:8, 4:8] = False                 # a closed cavity: filled
    assert graph.fill_holes(tf.constant(shell)).numpy()[5, 5, 5]
    image = phantom()
    for i in range(4):
        np.testing.assert_array_equal(graph.mean_plus_mask(tf.constant(image[..., i])).numpy(),
                                      mean_plus_mask(image[..., i]))


def test_percentiles_match_numpy():
    values = np.random.default_rng(2).normal(size=1001).astype(np.float32)
    points = [0.001, 0.1, 0.25, 0.5, 0.9, 0.999]
    np.testing.assert_allclose(graph.percentiles(tf.constant(values), points).numpy(),
                               np.percentile(values.astype(np.float64), np.multiply(points, 100)),
                               rtol=1e-12)


@pytest.mark.parametrize("present", [(1, 1, 1, 1), (0, 1, 0, 1)])
def test_normalise_intensities_matches_numpy(present):
    image = phantom(seed=3)
    landmarks = train_landmarks([phantom(seed=s) for s in range(3)])
    image = image * np.asarray(present, np.float32)
    ref = normalise_intensities(image, landmarks)
    table = np.stack([landmarks[m] for m in MODALITIES]).astype(np.float64)
    out = graph.normalise_intensities(tf.constant(image), tf.constant(np.asarray(present) > 0),
                                      tf.constant(table)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)
