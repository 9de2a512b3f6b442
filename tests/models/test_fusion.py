"""Fusion numerics against closed forms and NumPy."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from hved_tf.modalities import SUBSETS, subset_mask, subset_matrix
from hved_tf import gaussian
from hved_tf.models import fusion


def _experts(rng, batch=2, shape=(3, 4, 2), channels=5):
    mean = rng.normal(size=(batch, 4, *shape, channels)).astype(np.float32)
    logvar = rng.uniform(-2, 2, size=(batch, 4, *shape, channels)).astype(np.float32)
    return mean, logvar


def test_one_modality_and_prior_closed_form():
    # N(m, v) x N(0, 1): precision 1/v + 1, mean (m/v) / (1/v + 1) = m / (1 + v).
    rng = np.random.default_rng(0)
    mean, logvar = _experts(rng)
    mask = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], np.float32)
    post_mean, post_logvar = gaussian.product_of_gaussians(mean, logvar, mask)
    for b, i in ((0, 2), (1, 0)):
        v = np.exp(logvar[b, i].astype(np.float64))
        np.testing.assert_allclose(post_mean[b], mean[b, i] / (1 + v), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(post_logvar[b], np.log(v / (1 + v)), rtol=1e-5, atol=1e-5)


def test_product_against_numpy_for_every_subset():
    rng = np.random.default_rng(1)
    mean, logvar = _experts(rng, batch=1)
    for subset in SUBSETS:
        post_mean, post_logvar = gaussian.product_of_gaussians(mean, logvar, subset_mask(subset)[None])
        prec = 1 + sum(np.exp(-logvar[0, i].astype(np.float64)) for i in subset)
        mu = sum(mean[0, i] * np.exp(-logvar[0, i].astype(np.float64)) for i in subset) / prec
        np.testing.assert_allclose(post_mean[0], mu, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.exp(post_logvar[0]), 1 / prec, rtol=1e-4, atol=1e-6)


def test_invariant_to_order_and_to_masked_values():
    rng = np.random.default_rng(2)
    mean, logvar = _experts(rng)
    mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], np.float32)
    base = [t.numpy() for t in gaussian.product_of_gaussians(mean, logvar, mask)]
    for perm in itertools.permutations(range(4)):
        perm = list(perm)
        out = gaussian.product_of_gaussians(mean[:, perm], logvar[:, perm], mask[:, perm])
        for a, b in zip(base, out):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-6, atol=1e-6)
    garbage_mean, garbage_logvar = mean.copy(), logvar.copy()
    garbage_mean[mask == 0] = 1e6
    garbage_logvar[mask == 0] = -50  # the clip's lower end: a huge precision if it leaked in
    out = gaussian.product_of_gaussians(garbage_mean, garbage_logvar, mask)
    for a, b in zip(base, out):
        np.testing.assert_array_equal(a, b.numpy())


def test_subset_products_equal_single_products():
    rng = np.random.default_rng(3)
    mean, logvar = _experts(rng)
    all_mean, all_logvar = gaussian.product_of_gaussians_subsets(mean, logvar, subset_matrix())
    for s, row in enumerate(subset_matrix()):
        m, lv = gaussian.product_of_gaussians(mean, logvar, np.tile(row, (2, 1)))
        np.testing.assert_allclose(all_mean[:, s], m, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(all_logvar[:, s], lv, rtol=1e-6, atol=1e-7)


def test_split_moments_clips_logvar():
    feats = tf.constant([[[1.0, 2.0, 80.0, -90.0]]])
    mean, logvar = fusion.split_moments(feats)
    np.testing.assert_array_equal(mean.numpy(), [[[1.0, 2.0]]])
    np.testing.assert_array_equal(logvar.numpy(), [[[50.0, -50.0]]])


def test_hemis_moments_against_numpy():
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(2, 4, 3, 3, 2, 6)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1], [0, 0, 1, 0]], np.float32)
    poisoned = feats.copy()
    poisoned[mask == 0] = np.nan  # absent modalities must not leak in, even as NaN
    out = fusion.hemis_moments(poisoned, mask).numpy()
    for b in range(2):
        present = feats[b][mask[b] > 0].astype(np.float64)
        expected = np.concatenate([present.mean(0), present.var(0)], axis=-1)
        np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[1][..., 6:], 0.0)  # one modality: zero variance


def test_gaussian_fusion_modes_and_seeding():
    rng = np.random.default_rng(5)
    mean, logvar = _experts(rng, batch=1, shape=(20, 20, 20), channels=4)
    mask = np.ones((1, 4), np.float32)
    layer = fusion.GaussianFusion(seed=3)
    z_mean, post_mean, post_logvar = layer(mean, logvar, mask, mode="mean")
    np.testing.assert_array_equal(z_mean, post_mean)
    z1, _, _ = fusion.GaussianFusion(seed=3)(mean, logvar, mask)
    z2, _, _ = fusion.GaussianFusion(seed=3)(mean, logvar, mask)
    np.testing.assert_array_equal(z1, z2)  # same seed, same draw
    eps = (z1 - post_mean) / np.exp(0.5 * post_logvar)
    assert abs(float(np.mean(eps))) < 0.05 and abs(float(np.std(eps)) - 1) < 0.05
    z3, _, _ = layer(mean, logvar, mask)
    z4, _, _ = layer(mean, logvar, mask)
    assert not np.array_equal(z3, z4)  # the generator advances
    with pytest.raises(ValueError):
        fusion.GaussianFusion(mode="median")
