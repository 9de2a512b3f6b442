"""The fused instance norm + leaky ReLU of training against NumPy (float64 values, finite
differences) and against TF autodiff of the plain blocks."""
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hved_tf.models import blocks, ops
from hved_tf.models.norm_act import fused_norm_act

EPS, SLOPE = ops.INSTANCE_NORM_EPSILON, ops.LEAKY_SLOPE


def _numpy_norm_act(x, gamma, beta):
    """x [B, X, Y, Z, C] float64 -> leaky(instance_norm(x)) per sample."""
    return np.stack([ref.leaky(ref.instance_norm(xb, gamma, beta)) for xb in x])


def _inputs(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.5, 2.0, size=shape)
    gamma = rng.uniform(0.5, 2.0, shape[-1])
    beta = rng.normal(0.0, 0.5, shape[-1])
    upstream = rng.normal(size=shape)
    return x, gamma, beta, upstream


def _tf_grads(fn, x, gamma, beta, upstream, dtype=tf.float32):
    x, upstream = tf.constant(x, dtype), tf.constant(upstream, dtype)
    gamma, beta = tf.constant(gamma, tf.float32), tf.constant(beta, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([x, gamma, beta])
        out = fn(x, gamma, beta)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * tf.cast(upstream, tf.float32))
    return out, tape.gradient(loss, [x, gamma, beta])


@pytest.mark.parametrize("jit", [False, True])
def test_forward_against_numpy(jit):
    x, gamma, beta, _ = _inputs(0, (2, 6, 5, 7, 3))
    out = fused_norm_act(tf.constant(x, tf.float32), tf.constant(gamma, tf.float32),
                         tf.constant(beta, tf.float32), EPS, SLOPE, jit_compile=jit)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), _numpy_norm_act(x, gamma, beta), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_gradient_against_numpy_finite_differences(jit):
    shape = (2, 3, 4, 2, 2)
    x, gamma, beta, upstream = _inputs(1, shape)
    # Keep clear of the ReLU's kink, where the derivative jumps.
    y = np.stack([ref.instance_norm(xb, gamma, beta) for xb in x])
    assert np.abs(y).min() > 1e-3

    def loss(x_, gamma_, beta_):
        return float(np.sum(_numpy_norm_act(x_, gamma_, beta_) * upstream))

    def numeric(arr, which):
        grad, h = np.zeros_like(arr), 1e-6
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args = [x, gamma, beta]
            args[which] = plus
            up = loss(*args)
            args[which] = minus
            grad[idx] = (up - loss(*args)) / (2 * h)
        return grad

    _, (dx, dgamma, dbeta) = _tf_grads(
        lambda *a: fused_norm_act(*a, EPS, SLOPE, jit_compile=jit), x, gamma, beta, upstream)
    np.testing.assert_allclose(dx.numpy(), numeric(x, 0), rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(dgamma.numpy(), numeric(gamma, 1), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dbeta.numpy(), numeric(beta, 2), rtol=1e-3, atol=1e-3)


def test_gradient_equals_autodiff_of_the_plain_blocks():
    x, gamma, beta, upstream = _inputs(2, (2, 12, 10, 9, 4))
    plain = _tf_grads(lambda x_, g, b: ops.leaky_relu(ops.instance_norm(x_, g, b)),
                      x, gamma, beta, upstream)
    fused = _tf_grads(lambda *a: fused_norm_act(*a, EPS, SLOPE), x, gamma, beta, upstream)
    np.testing.assert_allclose(fused[0].numpy(), plain[0].numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(fused[1], plain[1]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_bfloat16_keeps_dtypes_and_float32_values():
    x, gamma, beta, upstream = _inputs(3, (1, 8, 8, 8, 4))
    x = tf.cast(tf.constant(x, tf.float32), tf.bfloat16).numpy().astype(np.float64)  # exact in bf16
    out, (dx, dgamma, dbeta) = _tf_grads(lambda *a: fused_norm_act(*a, EPS, SLOPE), x, gamma,
                                         beta, upstream, dtype=tf.bfloat16)
    assert out.dtype == tf.bfloat16 and dx.dtype == tf.bfloat16
    assert dgamma.dtype == tf.float32 and dbeta.dtype == tf.float32
    # Statistics and arithmetic are float32: the only bf16 error is the output's rounding.
    want = _numpy_norm_act(x, gamma, beta)
    np.testing.assert_allclose(out.numpy().astype(np.float64), want, rtol=2 ** -8, atol=1e-2)


def test_conv_unit_training_path_matches_inference_path():
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(2, 6, 5, 4, 3)).astype(np.float32))
    unit = blocks.ConvUnit(5)
    unit.build(x.shape)
    unit.norm.gamma.assign(rng.uniform(0.5, 2, 3))
    unit.norm.beta.assign(rng.normal(size=3))
    results = []
    for training in (False, True):
        with tf.GradientTape() as tape:
            out = unit(x, training=training)
            loss = tf.reduce_sum(out * out)
        results.append((out.numpy(), [g.numpy() for g in
                                      tape.gradient(loss, unit.trainable_variables)]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-5)
    for got, want in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
