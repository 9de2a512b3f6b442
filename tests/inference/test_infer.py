"""UHVED.infer: posterior mean for one sample, repeatable stateless draws, tensor sample counts."""
import numpy as np
import tensorflow as tf

from hved_tf.models import build_model


def test_infer_mean_samples_and_tensor_count():
    model = build_model("u_hved", base_filters=4, levels=3, seed=1)
    rng = np.random.default_rng(0)
    x = {"image": tf.constant(rng.normal(size=(2, 16, 16, 16, 4)), tf.float32),
         "mask": tf.constant([[1, 0, 1, 1], [0, 1, 0, 0]], tf.float32)}
    one = model.infer(x, num_samples=1)
    mean = model(x, z_mode="mean")
    np.testing.assert_allclose(one["seg_probabilities"], mean["seg_probabilities"], atol=1e-6)
    np.testing.assert_allclose(one["recon"], mean["recon"], atol=1e-6)
    assert float(tf.reduce_max(one["seg_variance"])) == 0.0
    three = model.infer(x, num_samples=3, seed=5)
    again = model.infer(x, num_samples=3, seed=5)
    other = model.infer(x, num_samples=3, seed=6)
    np.testing.assert_array_equal(three["seg_probabilities"], again["seg_probabilities"])
    assert np.abs(three["seg_probabilities"] - other["seg_probabilities"]).max() > 1e-6
    np.testing.assert_allclose(tf.reduce_sum(three["seg_probabilities"], -1), 1.0, atol=1e-5)
    assert float(tf.reduce_min(three["seg_variance"])) >= 0.0
    assert float(tf.reduce_max(three["seg_variance"])) > 0.0
    counted = tf.function(lambda n: model.infer(x, num_samples=n, seed=5))
    np.testing.assert_allclose(counted(tf.constant(3))["seg_probabilities"],
                               three["seg_probabilities"], atol=1e-6)
    np.testing.assert_allclose(counted(tf.constant(1))["seg_probabilities"],
                               one["seg_probabilities"], atol=1e-6)


def test_mean_and_variance_equal_numpy_over_the_documented_draws():
    """Draw the latents with the documented keys (seed, 64 * sample + level), decode each, and
    take NumPy's mean and population variance over the draws."""
    model = build_model("u_hved", base_filters=4, levels=3, seed=2)
    image = tf.random.stateless_normal((1, 16, 16, 16, 4), seed=[1, 2])
    mask = tf.constant([[1.0, 1.0, 0.0, 1.0]])
    out = model.infer({"image": image, "mask": mask}, num_samples=3, seed=7)
    _, means, logvars = model.fuse(model.encode(image * tf.reshape(mask, [1, 1, 1, 1, 4])),
                                   mask, "mean")
    draws = []
    for i in range(3):
        latents = [m + tf.exp(0.5 * lv)
                   * tf.random.stateless_normal(tf.shape(m), seed=[7, 64 * i + k])
                   for k, (m, lv) in enumerate(zip(means, logvars))]
        draws.append(tf.nn.softmax(model.seg_decoder(latents), axis=-1).numpy())
    draws = np.stack(draws)
    np.testing.assert_allclose(out["seg_probabilities"], draws.mean(0), atol=1e-6)
    np.testing.assert_allclose(out["seg_variance"][..., 0], draws.var(0).sum(-1), atol=1e-6)


def test_sequences_synthesised_only_where_asked():
    from hved_tf.inference.predictor import ModelPredictor
    model = build_model("u_hved", base_filters=4, levels=3, seed=3)
    rng = np.random.default_rng(1)
    x = {"image": tf.constant(rng.normal(size=(1, 16, 16, 16, 4)), tf.float32),
         "mask": tf.ones((1, 4))}
    with_images = model.infer(x, num_samples=2)
    without = model.infer(x, num_samples=2, synthesise=False)
    assert "recon" in with_images and "recon" not in without
    np.testing.assert_array_equal(with_images["seg_probabilities"], without["seg_probabilities"])
    windows = rng.normal(size=(1, 16, 16, 16, 4)).astype(np.float32)
    missing = ModelPredictor(model, 2, synthesise="missing")
    assert "recon" not in missing.for_mask([1, 1, 1, 1])(windows)
    assert missing.for_mask([1, 0, 1, 1])(windows)["recon"].shape == (1, 16, 16, 16, 4)
    assert "recon" in ModelPredictor(model, 2).for_mask([1, 1, 1, 1])(windows)
    assert "recon" not in ModelPredictor(model, 2, synthesise=False).for_mask([1, 0, 1, 1])(
        windows)
