"""Mirror test-time augmentation: the average over flips and the law-of-total-variance spread
on a predictor with a known output, the window predictor against flips done by hand, and the
export's frozen TTA equal to the predictor's."""
import numpy as np
import pytest
import tensorflow as tf

from hved_tf.config import InferenceOptions
from hved_tf.inference.predictor import ModelPredictor
from hved_tf.inference.tta import flip_sets, with_flips


def test_flip_sets():
    assert flip_sets((0, 1, 2)) == [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    assert flip_sets(()) == [()]


def _ramp_infer(x):
    """Two classes whose probability is a ramp along axis 0 of the window (not flip-symmetric),
    with a constant within-sample variance of 0.01."""
    n = x.shape[1]
    r = tf.reshape(tf.linspace(0.0, 1.0, n), [1, n, 1, 1, 1])
    r = tf.broadcast_to(r, tf.concat([tf.shape(x)[:4], [1]], 0))
    return tf.concat([1 - r, r], -1), tf.fill(tf.concat([tf.shape(x)[:4], [1]], 0), 0.01), x


def test_flips_average_and_their_spread_enters_the_variance():
    x = tf.zeros([1, 5, 3, 2, 1])
    probs, variance, recon = with_flips(_ramp_infer, x, (0,))
    np.testing.assert_allclose(probs.numpy(), 0.5, atol=1e-6)        # ramp and its mirror
    r = np.linspace(0, 1, 5)[:, None, None]
    expected = 0.01 + 2 * (r - 0.5) ** 2             # within + sum over 2 classes of between
    np.testing.assert_allclose(variance.numpy()[0, ..., 0], np.broadcast_to(expected, (5, 3, 2)),
                               atol=1e-6)
    # Flips along an axis the output does not depend on change nothing.
    p1, v1, _ = with_flips(_ramp_infer, x, (1, 2))
    p0, v0, _ = _ramp_infer(x)
    np.testing.assert_allclose(p1.numpy(), p0.numpy(), atol=1e-6)
    np.testing.assert_allclose(v1.numpy(), v0.numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def model():
    from hved_tf.models import build_model
    return build_model("u_hved", base_filters=4, levels=3, seed=0)


def test_window_predictor_equals_flips_done_by_hand(model):
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(1, 16, 12, 8, 4)).astype(np.float32)
    mask = np.array([1, 1, 0, 1], np.float32)
    out = ModelPredictor(model, num_samples=2, synthesise=True, tta_axes=(0, 2)).for_mask(mask)(
        windows)
    by_hand = []
    for axes in [(), (1,), (3,), (1, 3)]:
        w = np.flip(windows, axes) if axes else windows
        o = model.infer({"image": tf.constant(np.ascontiguousarray(w)),
                         "mask": tf.constant(mask[None])}, num_samples=2)
        by_hand.append({k: (np.flip(v.numpy(), axes) if axes else v.numpy())
                        for k, v in o.items()})
    mean = np.mean([h["seg_probabilities"] for h in by_hand], axis=0)
    np.testing.assert_allclose(out["probabilities"], mean, atol=1e-5)
    # Unflipped. Graph and eager mode sum the norms' statistics in other orders (one ulp
    # apart), which every later layer carries: up to 1.5e-5 apart on the synthesised T2 here.
    np.testing.assert_allclose(out["recon"], by_hand[0]["recon"], atol=3e-5)
    between = np.sum(np.mean([(h["seg_probabilities"] - mean) ** 2 for h in by_hand], axis=0),
                     axis=-1, keepdims=True)
    within = np.mean([h["seg_variance"] for h in by_hand], axis=0)
    np.testing.assert_allclose(out["variance"], within + between, atol=1e-5)


def test_the_exports_frozen_tta_equals_the_predictors(model, tiny_run):
    from hved_tf.inference.loading import load_trained
    from hved_tf.serving.export import ServingModule

    trained = load_trained(tiny_run)
    options = InferenceOptions(num_samples=1, tta=True, tta_axes=(0, 1, 2))
    module = ServingModule(trained.model, "brats2018", options, landmarks=trained.landmarks)
    rng = np.random.default_rng(1)
    window = rng.normal(size=(1, 16, 16, 16, 4)).astype(np.float32)
    mask = np.ones(4, np.float32)
    served = module._window(tf.constant(window), tf.constant(mask[None]), 1)
    local = ModelPredictor(trained.model, 1, True, 0, tta_axes=(0, 1, 2)).for_mask(mask)(window)
    np.testing.assert_allclose(served["seg_probabilities"].numpy(), local["probabilities"],
                               atol=1e-5)
    np.testing.assert_allclose(served["variance"].numpy(), local["variance"][..., 0], atol=1e-5)
