"""Blocks against NumPy: instance norm, leaky ReLU, the legacy TF1 resize, SAME max pooling."""
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hved_tf.models import blocks, ops


def _tf1_resize_bilinear_2d(img, out_h, out_w):
    """The TF1 resize_bilinear rule written out per pixel (align_corners=False, no half pixel)."""
    h, w, c = img.shape
    sh, sw = np.float32(h) / np.float32(out_h), np.float32(w) / np.float32(out_w)
    out = np.zeros((out_h, out_w, c))
    for i in range(out_h):
        y = np.float32(i) * sh
        y0 = int(np.floor(y)); y1 = min(y0 + 1, h - 1); dy = y - y0
        for j in range(out_w):
            x = np.float32(j) * sw
            x0 = int(np.floor(x)); x1 = min(x0 + 1, w - 1); dx = x - x0
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * dx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


def test_numpy_resize_rule_matches_per_pixel_rule():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(5, 7, 2))
    sep = ref.resize_axis_tf1(ref.resize_axis_tf1(img, 9, 0), 13, 1)
    np.testing.assert_allclose(sep, _tf1_resize_bilinear_2d(img, 9, 13), atol=1e-12)


@pytest.mark.parametrize("src,dst", [((3, 4, 5), (6, 8, 10)), ((4, 4, 3), (7, 8, 5)),
                                     ((5, 3, 4), (5, 6, 4)), ((6, 7, 8), (3, 4, 5))])
def test_legacy_resize_matches_tf1_rule(src, dst):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, *src, 3)).astype(np.float32)
    out = ops.resize_legacy_3d(tf.constant(x), dst).numpy()
    for b in range(2):
        np.testing.assert_allclose(out[b], ref.resize_tf1_3d(x[b].astype(np.float64), dst),
                                   rtol=1e-5, atol=1e-5)


def test_legacy_resize_is_not_half_pixel():
    # Upsampling [0, 1] by 2 under the legacy rule gives [0, 0.5, 1, 1], not the centred
    # [0, 0.25, 0.75, 1] of half_pixel_centers=True.
    x = tf.reshape(tf.constant([0.0, 1.0]), (1, 2, 1, 1, 1))
    out = ops.resize_legacy_3d(x, (4, 1, 1)).numpy().ravel()
    np.testing.assert_allclose(out, [0, 0.5, 1, 1])


def test_instance_norm_against_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(3, 2, size=(2, 5, 6, 7, 3)).astype(np.float32)
    layer = blocks.InstanceNorm()
    layer.build(x.shape)
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    layer.gamma.assign(gamma); layer.beta.assign(beta)
    out = layer(x).numpy()
    for b in range(2):
        np.testing.assert_allclose(out[b], ref.instance_norm(x[b].astype(np.float64), gamma, beta),
                                   rtol=1e-5, atol=1e-5)
    assert layer.epsilon == 1e-6


def test_instance_norm_stays_accurate_on_a_large_volume():
    # Millions of voxels with an offset mean: a whole-volume float32 reduction loses digits
    # (tf.nn.moments is off by 2.7e-3 on this very case); the two-stage sums keep 2e-5.
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(1, 128, 128, 96, 2)) * 3 + 5).astype(np.float32)
    out = ops.instance_norm(tf.constant(x), tf.ones(2), tf.zeros(2)).numpy()
    np.testing.assert_allclose(out[0], ref.instance_norm(x[0].astype(np.float64), np.ones(2),
                                                         np.zeros(2)), rtol=0, atol=2e-5)


def test_spatial_sum_of_a_2d_and_a_3d_map():
    x = np.arange(2 * 3 * 4 * 5 * 2, dtype=np.float32).reshape(2, 3, 4, 5, 2)
    np.testing.assert_array_equal(ops.spatial_sum(tf.constant(x)).numpy(),
                                  x.sum((1, 2, 3), keepdims=True))
    np.testing.assert_array_equal(ops.spatial_sum(tf.constant(x[:, :, :, 0])).numpy(),
                                  x[:, :, :, 0].sum((1, 2), keepdims=True))


def test_instance_norm_epsilon_matters_on_constant_input():
    layer = blocks.InstanceNorm()
    x = np.full((1, 4, 4, 4, 1), 7.0, np.float32)
    layer.build(x.shape)
    layer.beta.assign([0.5])
    np.testing.assert_allclose(layer(x).numpy(), 0.5)  # (x - mean) = 0 exactly: only beta


def test_leaky_relu_slope():
    np.testing.assert_allclose(ops.leaky_relu(tf.constant([-2.0, 0.0, 3.0])).numpy(),
                               [-0.04, 0.0, 3.0], rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 4, 4), (5, 6, 7), (3, 3, 9)])
def test_max_pool_same(shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, *shape, 2)).astype(np.float32)
    out = ops.max_pool_3d(tf.constant(x)).numpy()[0]
    np.testing.assert_array_equal(out, ref.max_pool_same(x[0]))


def test_conv_unit_is_norm_relu_conv_without_bias():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 6, 5, 4, 3)).astype(np.float32)
    unit = blocks.ConvUnit(5)
    unit.build(x.shape)
    assert [w.name for w in unit.weights] == ["gamma", "beta", "kernel"]
    w = {"p/in_0/InstanceNorm/gamma": unit.norm.gamma.numpy(),
         "p/in_0/InstanceNorm/beta": unit.norm.beta.numpy(),
         "p/conv_0/w": unit.conv.kernel.numpy().astype(np.float64)}
    np.testing.assert_allclose(unit(x).numpy()[0], ref.unit(x[0].astype(np.float64), w, "p", 0),
                               rtol=1e-5, atol=1e-5)


def test_niftynet_initializer_stddev():
    values = blocks.NiftyNetHeNormal(seed=0)((3, 3, 3, 16, 64)).numpy()
    bound = 2 * np.sqrt(2 / (27 * 16))
    assert np.abs(values).max() <= bound + 1e-6
    # A normal truncated at 2 sigma has std 0.8796 sigma.
    assert values.std() == pytest.approx(0.8796 * np.sqrt(2 / (27 * 16)), rel=0.03)
