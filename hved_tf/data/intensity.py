"""Intensity augmentation as TF ops, for models that must carry over to unseen scanners: a smooth
multiplicative bias field, gamma, scale and shift, Gaussian noise, blur. Seeded like the spatial
augmentation (stateless ops: the same seed gives the same window on any worker).

Each operation runs with its own probability, per channel (each sequence comes from its own
acquisition) and relative to the channel's background `b` (its minimum in the window: what the
preprocessing leaves outside the brain), so that the background stays the background and a
missing sequence (all zeros) stays zeros:

    bias field     b + (x - b) * exp(f),  f a random quadratic polynomial of the window's
                   coordinates in [-1, 1] (10 coefficients uniform in ±strength / 3)
    gamma          b + r * ((x - b) / r) ** g,  r the channel's range above b, log g in ±range
    scale, shift   b + (x - b) * a + s inside the brain,  a in 1 ± scale, s in ±shift
    noise          x + N(0, sigma²) inside the brain,  sigma uniform in [0, std]
    blur           a separable Gaussian of sigma uniform in [0.25, max_sigma] voxels, the
                   background put back outside the brain

("inside the brain": x > b.) `hved_tf.config.IntensityConfig` holds (probability, range...)
per operation; `augment_intensity(image, seed, settings)` applies them to one
window [X, Y, Z, C]. The pure parts (`bias_field`, `gamma`, ...) take explicit parameters and
are tested against NumPy.
"""
from __future__ import annotations

import tensorflow as tf


# ------------------------------------------------------------------ the operations


def _background(image):
    return tf.reduce_min(image, axis=[0, 1, 2], keepdims=True)        # [1, 1, 1, C]


def quadratic_terms(shape):
    """The 10 monomials of degree <= 2 of the coordinates in [-1, 1], [X, Y, Z, 10]."""
    axes = [tf.linspace(-1.0, 1.0, n) if n > 1 else tf.zeros([1]) for n in shape]
    x, y, z = tf.meshgrid(*axes, indexing="ij")
    one = tf.ones_like(x)
    return tf.stack([one, x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], axis=-1)


def bias_field(image, coefficients):
    """coefficients [10, C]: the field of each channel."""
    field = tf.exp(tf.tensordot(quadratic_terms(image.shape[:3]), coefficients, axes=1))
    b = _background(image)
    return b + (image - b) * field


def gamma(image, gammas):
    """gammas [C]."""
    b = _background(image)
    r = tf.maximum(tf.reduce_max(image, axis=[0, 1, 2], keepdims=True) - b, 1e-6)
    return b + r * tf.pow(tf.clip_by_value((image - b) / r, 0.0, 1.0), gammas)


def scale_shift(image, scales, shifts):
    """scales, shifts [C]."""
    b = _background(image)
    inside = tf.cast(image > b, image.dtype)
    return b + (image - b) * scales + shifts * inside


def add_noise(image, noise):
    """noise [X, Y, Z, C] (already scaled), added inside the brain."""
    return image + noise * tf.cast(image > _background(image), image.dtype)


def gaussian_kernel(sigma, radius):
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * tf.square(x / tf.maximum(sigma, 1e-3)))
    return k / tf.reduce_sum(k)


def blur(image, sigmas, radius=5):
    """A separable Gaussian per channel (sigmas [C]), edges replicated, the background put
    back outside the brain."""
    b = _background(image)
    inside = image > b
    channels = tf.transpose(image, [3, 0, 1, 2])[..., None]            # [C, X, Y, Z, 1]
    for axis in range(3):
        pads = [[0, 0]] * 5
        pads[axis + 1] = [radius, radius]
        padded = tf.pad(channels, pads, mode="SYMMETRIC")
        out = []
        for c in range(image.shape[-1]):
            shape = [1, 1, 1, 1, 1]
            shape[axis] = 2 * radius + 1
            kernel = tf.reshape(gaussian_kernel(sigmas[c], radius), shape)
            out.append(tf.nn.conv3d(padded[c:c + 1], kernel, [1] * 5, "VALID"))
        channels = tf.concat(out, axis=0)
    blurred = tf.transpose(channels[..., 0], [1, 2, 3, 0])
    return tf.where(inside, blurred, b + tf.zeros_like(image))


# ------------------------------------------------------------------ random draws


def augment_intensity(image, seed, settings):
    """One window [X, Y, Z, C] augmented as `settings` say (see the module docstring)."""
    if not settings.active:
        return image
    seeds = tf.random.experimental.stateless_split(seed, 12)
    channels = image.shape[-1]

    def chance(k, p):
        return tf.random.stateless_uniform([], seed=seeds[k]) < p

    def uniform(k, shape, low, high):
        return tf.random.stateless_uniform(shape, seed=seeds[k], minval=low, maxval=high)

    p, strength = settings.bias_field
    if p > 0:
        coefficients = uniform(1, [10, channels], -strength / 3, strength / 3)
        image = tf.cond(chance(0, p), lambda: bias_field(image, coefficients), lambda: image)
    p, log_range = settings.gamma
    if p > 0:
        gammas = tf.exp(uniform(3, [channels], -log_range, log_range))
        image = tf.cond(chance(2, p), lambda: gamma(image, gammas), lambda: image)
    p, scale, shift = settings.scale_shift
    if p > 0:
        scales = uniform(5, [channels], 1 - scale, 1 + scale)
        shifts = uniform(6, [channels], -shift, shift) if shift > 0 else tf.zeros([channels])
        image = tf.cond(chance(4, p), lambda: scale_shift(image, scales, shifts), lambda: image)
    p, std = settings.noise
    if p > 0:
        sigma = uniform(8, [1, 1, 1, channels], 0.0, std)
        noise = tf.random.stateless_normal(tf.shape(image), seed=seeds[9]) * sigma
        image = tf.cond(chance(7, p), lambda: add_noise(image, noise), lambda: image)
    p, max_sigma = settings.blur
    if p > 0 and max_sigma > 0.25:
        sigmas = uniform(10, [channels], 0.25, max_sigma)
        image = tf.cond(chance(11, p), lambda: blur(image, sigmas), lambda: image)
    return image
