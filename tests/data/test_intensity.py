"""Intensity augmentation: each operation against NumPy with the same parameters, the
background and missing sequences left alone, the seeded draws reproducible, the settings
checked."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from hved_tf.config import IntensityConfig
from hved_tf.data import intensity


def _window(seed=0, shape=(12, 10, 8)):
    """A 'brain' of positive whitened values on a background of -1.5; channel 2 missing."""
    rng = np.random.default_rng(seed)
    image = np.full((*shape, 4), -1.5, np.float32)
    image[2:-2, 2:-2, 2:-2] = rng.normal(1.0, 0.5, (shape[0] - 4, shape[1] - 4, shape[2] - 4, 4))
    image[..., 2] = 0.0
    return image


def _coords(shape):
    return np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")


def test_bias_field_is_a_quadratic_exponential_field_above_the_background():
    image = _window()
    coefficients = np.random.default_rng(1).uniform(-0.1, 0.1, (10, 4)).astype(np.float32)
    out = intensity.bias_field(tf.constant(image), tf.constant(coefficients)).numpy()
    x, y, z = _coords(image.shape[:3])
    monomials = [np.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, x * z, y * z]
    for c in range(4):
        field = np.exp(sum(coefficients[k, c] * m for k, m in enumerate(monomials)))
        b = image[..., c].min()
        np.testing.assert_allclose(out[..., c], b + (image[..., c] - b) * field, atol=1e-5)
    assert np.all(out[0, 0, 0] == image[0, 0, 0])                      # background kept
    assert not out[..., 2].any()                                        # missing: zeros


def test_gamma_scale_shift_and_noise_against_numpy():
    image = _window(2)
    b = image.reshape(-1, 4).min(0)
    r = image.reshape(-1, 4).max(0) - b
    g = np.array([0.7, 1.3, 1.0, 1.1], np.float32)
    out = intensity.gamma(tf.constant(image), tf.constant(g)).numpy()
    np.testing.assert_allclose(out, b + np.maximum(r, 1e-6) * np.clip(
        (image - b) / np.maximum(r, 1e-6), 0, 1) ** g, atol=1e-5)
    a, s = np.array([0.9, 1.1, 1.0, 1.05], np.float32), np.array([0.1, -0.2, 0.3, 0.0],
                                                                  np.float32)
    out = intensity.scale_shift(tf.constant(image), tf.constant(a), tf.constant(s)).numpy()
    inside = image > b
    np.testing.assert_allclose(out, b + (image - b) * a + s * inside, atol=1e-6)
    assert not out[..., 2].any() and out[0, 0, 0, 0] == -1.5
    noise = np.random.default_rng(3).normal(0, 0.1, image.shape).astype(np.float32)
    out = intensity.add_noise(tf.constant(image), tf.constant(noise)).numpy()
    np.testing.assert_allclose(out, image + noise * inside, atol=1e-6)


def test_blur_is_a_gaussian_inside_the_brain():
    image = _window(4, (24, 22, 20))
    sigmas = np.array([1.0, 0.5, 1.0, 2.0], np.float32)
    out = intensity.blur(tf.constant(image), tf.constant(sigmas)).numpy()
    b = image.reshape(-1, 4).min(0)
    for c in (0, 1, 3):
        expected = gaussian_filter(image[..., c].astype(np.float64), sigmas[c], mode="reflect",
                                   truncate=5 / sigmas[c])
        inside = image[..., c] > b[c]
        np.testing.assert_allclose(out[..., c][inside], expected[inside], atol=1e-4)
        assert np.all(out[..., c][~inside] == b[c])
    assert not out[..., 2].any()


def test_draws_are_seeded_and_respect_the_probabilities():
    image = tf.constant(_window(5))
    on = IntensityConfig(bias_field=(1.0, 0.3), gamma=(1.0, 0.3), scale_shift=(1.0, 0.1, 0.1),
                         noise=(1.0, 0.1), blur=(1.0, 1.0)).validate()
    seed = tf.constant([4, 2], tf.int64)
    a = intensity.augment_intensity(image, seed, on).numpy()
    b = intensity.augment_intensity(image, seed, on).numpy()
    c = intensity.augment_intensity(image, tf.constant([4, 3], tf.int64), on).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, image.numpy())
    assert not a[..., 2].any()                                          # a missing sequence
    off = IntensityConfig()
    assert not off.active
    assert intensity.augment_intensity(image, seed, off) is image
    never = IntensityConfig(noise=(0.0, 0.5))
    np.testing.assert_array_equal(intensity.augment_intensity(image, seed, never), image)


@pytest.mark.parametrize("settings, flag", [
    (dict(noise=(1.5, 0.1)), "--noise"), (dict(gamma=(0.5,)), "--gamma"),
    (dict(blur=(0.5, -1.0)), "--blur"), (dict(scale_shift=(0.5, 1.5, 0.1)), "--intensity_scale")])
def test_settings_out_of_range_are_refused(settings, flag):
    with pytest.raises(ValueError, match=flag if flag != "--intensity_scale" else "scale"):
        IntensityConfig(**settings).validate()
