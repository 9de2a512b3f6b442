"""segment_raw's resampling in the graph (hved_tf.serving.spacing) against SciPy's, which the
host path (hved_tf.preprocessing.resample) uses."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from hved_tf.preprocessing.resample import SpacingChange, image_resampled
from hved_tf.serving import spacing as resampling

CHANGES = [((1.0, 1.0, 5.0), (0.7, 1.3, 1.0)),       # finer, coarser and much finer at once
           ((0.45, 0.45, 6.0), (1.0, 1.0, 1.0)),     # a thick-slice clinical scan to 1 mm
           ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0))]


def volume(shape=(23, 17, 9, 2), seed=0):
    v = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    v[:3] = 0.0                    # a zero background, on one face of both channels
    v[:, :4, :, 1] = 0.0           # and on another face of one channel
    return v


def planned(shape, zooms, spacing):
    out, same = resampling.plan(tf.constant(shape, tf.int32), tf.constant(zooms, tf.float32),
                                tf.constant(spacing, tf.float32))
    return tuple(out.numpy()), bool(same.numpy())


@pytest.mark.parametrize("zooms,spacing", CHANGES)
def test_plan_gives_the_host_output_shape(zooms, spacing):
    shape = (23, 17, 9)
    assert planned(shape, zooms, spacing) == (SpacingChange(shape, zooms, spacing).out_shape,
                                              False)
    assert planned(shape, zooms, zooms)[1]
    assert planned(shape, (1.0, 1.0, 1.0), (1.005, 0.996, 1.0))[1]      # header rounding
    assert planned((3, 3, 3), (1.0, 1.0, 1.0), (9.0, 9.0, 9.0))[0] == (1, 1, 1)


@pytest.mark.parametrize("zooms,spacing", CHANGES)
def test_images_resample_as_scipy_cubic_with_the_background_kept(zooms, spacing):
    v = volume()
    change = SpacingChange(v.shape[:3], zooms, spacing)
    expected = image_resampled(v, change.to_model)
    got = resampling.to_model_image(tf.constant(v), tf.constant(change.out_shape)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)
    np.testing.assert_array_equal(got == 0, expected == 0)


def test_the_cubic_matrix_is_scipy_affine_transform_on_each_axis():
    """One axis, from SciPy directly: the spline with its prefilter, edge values repeated."""
    n, m = 13, 29
    x = np.random.default_rng(3).normal(size=n)
    s = n / m
    expected = ndimage.affine_transform(x, [s], offset=0.5 * s - 0.5, output_shape=(m,),
                                        order=3, mode="nearest")
    matrix = resampling.cubic_matrix(tf.constant(n), tf.constant(m)).numpy()
    np.testing.assert_allclose(matrix @ x, expected, atol=1e-9)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)    # constants kept


@pytest.mark.parametrize("zooms,spacing", CHANGES)
def test_outputs_come_back_linearly(zooms, spacing):
    v = volume(seed=1)
    change = SpacingChange(v.shape[:3], zooms, spacing)
    on_model = change.to_model(v, 1)
    expected = change.to_input(on_model, 1)
    got = resampling.to_input_linear(tf.constant(on_model), tf.constant(v.shape[:3])).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
