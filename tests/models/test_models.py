"""Model construction, call contract, bad input, serialisation."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from hved_tf.models import build_model, model_options

SMALL = dict(base_filters=4, levels=3)


def _inputs(shape=(16, 16, 16), batch=1, mask=(1, 1, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(batch, *shape, 4)).astype(np.float32)
    return {"image": image, "mask": np.tile(np.asarray(mask, np.float32), (batch, 1))}


@pytest.mark.parametrize("name,variables,weights", [
    ("u_hved", 195, 1_250_552), ("u_hemis", 119, 565_888)])
def test_weight_counts_of_the_release(name, variables, weights):
    model = build_model(name)
    assert len(model.trainable_weights) == variables
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == weights


@pytest.mark.parametrize("name,options", [
    ("u_hved", SMALL), ("u_hemis", SMALL), ("unet", {**SMALL, "subset": "T1c+FLAIR"}),
    ("hemis", {"backend_filters": 6, "frontend_filters": 4})])
def test_output_shapes_odd_sizes(name, options):
    model = build_model(name, **options)
    mask = (0, 1, 0, 1) if name == "unet" else (1, 0, 1, 1)
    out = model(_inputs((13, 10, 9), batch=2, mask=mask))
    assert out["seg_logits"].shape == (2, 13, 10, 9, 4)
    assert out["seg_logits"].dtype == tf.float32
    np.testing.assert_allclose(tf.reduce_sum(out["seg_probabilities"], -1), 1.0, rtol=1e-5)
    if name == "u_hved":
        assert out["recon"].shape == (2, 13, 10, 9, 4)


def test_u_hved_sampling_and_mean_modes():
    model = build_model("u_hved", seed=0, **SMALL)
    x = _inputs((12, 12, 12))
    a = model(x, z_mode="mean")
    b = model(x, z_mode="mean")
    np.testing.assert_array_equal(a["seg_logits"], b["seg_logits"])
    s1 = model(x, z_mode="sample")
    s2 = model(x, z_mode="sample")
    assert not np.array_equal(s1["seg_logits"], s2["seg_logits"])
    # Reconstructions come from the posterior mean whatever z_mode says.
    np.testing.assert_allclose(s1["recon"], a["recon"], rtol=1e-6)
    ten = model(x, z_mode="sample", num_samples=10)
    np.testing.assert_allclose(tf.nn.softmax(ten["seg_logits"]), ten["seg_probabilities"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tf.reduce_sum(ten["seg_probabilities"], -1), 1.0, rtol=1e-5)


def test_u_hved_average_of_samples_is_mean_of_softmaxes():
    model = build_model("u_hved", seed=5, **SMALL)
    x = _inputs((8, 8, 8))
    twin = build_model("u_hved", seed=5, **SMALL)
    twin.set_weights(model.get_weights())
    avg = model(x, num_samples=3)["seg_probabilities"].numpy()
    # The twin draws the same three samples one call at a time... only if the seeds line up, so
    # compare instead with an explicit average computed from the model's own pieces.
    image = tf.constant(x["image"]); mask = tf.constant(x["mask"])
    zs, means, logvars = twin.fuse(twin.encode(image), mask, "sample")
    probs = [tf.nn.softmax(twin._decode(twin.seg_decoder, zs), -1)]
    for _ in range(2):
        draw = [f.sample(m, lv) for f, m, lv in zip(twin.fusions, means, logvars)]
        probs.append(tf.nn.softmax(twin._decode(twin.seg_decoder, draw), -1))
    np.testing.assert_allclose(avg, np.mean(probs, 0), rtol=1e-5, atol=1e-6)


def test_masked_out_inputs_do_not_matter():
    for name in ("u_hved", "u_hemis", "hemis"):
        model = build_model(name, **(SMALL if name != "hemis" else {"backend_filters": 4}))
        x = _inputs((12, 12, 12), mask=(1, 0, 0, 1))
        y = {"image": x["image"].copy(), "mask": x["mask"]}
        y["image"][..., 1:3] = 1e3
        kwargs = {"z_mode": "mean"} if name == "u_hved" else {}
        np.testing.assert_array_equal(model(x, **kwargs)["seg_logits"],
                                      model(y, **kwargs)["seg_logits"])


@pytest.mark.parametrize("bad,match", [
    ({"image": np.zeros((1, 16, 16, 16, 4), np.float32)}, "expects a dict"),
    ({"img": np.zeros((1, 16, 16, 16, 4), np.float32), "mask": np.ones((1, 4), np.float32)},
     "expects a dict"),
    ({"image": np.zeros((1, 16, 16, 16, 3), np.float32), "mask": np.ones((1, 4), np.float32)},
     "shape \\[B, X, Y, Z, 4\\]"),
    ({"image": np.zeros((1, 16, 16, 16, 4), np.int32), "mask": np.ones((1, 4), np.float32)},
     "float tensor"),
    ({"image": np.zeros((1, 16, 7, 16, 4), np.float32), "mask": np.ones((1, 4), np.float32)},
     "at least 8"),
    ({"image": np.zeros((1, 16, 16, 16, 4), np.float32), "mask": np.zeros((1, 4), np.float32)},
     "no modality present"),
    ({"image": np.zeros((2, 16, 16, 16, 4), np.float32),
      "mask": np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32)}, "sample\\(s\\) \\[1\\]"),
    ({"image": np.zeros((1, 16, 16, 16, 4), np.float32), "mask": np.ones((1, 3), np.float32)},
     "'mask' must have shape"),
])
def test_bad_input_is_a_clear_error(bad, match):
    model = build_model("u_hemis", **SMALL)
    with pytest.raises(ValueError, match=match):
        model(bad)


def test_all_zero_mask_fails_in_a_graph_too():
    model = build_model("u_hved", **SMALL)
    fn = tf.function(lambda x, m: model({"image": x, "mask": m})["seg_logits"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="no modality present"):
        fn(tf.zeros((1, 16, 16, 16, 4)), tf.zeros((1, 4)))


def test_build_model_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="Unknown model 'vnet'"):
        build_model("vnet")
    with pytest.raises(ValueError, match="Unknown option"):
        build_model("u_hved", width=8)
    with pytest.raises(ValueError, match="kl_variant"):
        build_model("u_hved", kl_variant="both")
    with pytest.raises(ValueError, match="base_filters"):
        build_model("u_hemis", base_filters=0)
    with pytest.raises(ValueError, match="Unknown modality"):
        build_model("unet", subset="T1+DWI")
    assert "subset" in model_options("unet")


def test_unet_refuses_another_subset():
    model = build_model("unet", subset="T1c+FLAIR", **SMALL)
    model(_inputs(mask=(0, 1, 0, 1)))
    with pytest.raises(ValueError, match="trained on the modalities T1c\\+FLAIR"):
        model(_inputs(mask=(1, 1, 0, 1)))


@pytest.mark.parametrize("name,options", [
    ("u_hved", {**SMALL, "kl_variant": "paper", "num_samples": 2}), ("u_hemis", SMALL),
    ("unet", {**SMALL, "subset": "T2"}), ("hemis", {"backend_filters": 4})])
def test_save_and_load_keras_and_weights(tmp_path, name, options):
    model = build_model(name, seed=1, loss_weights={"kl": 0.5}, **options)
    mask = (0, 0, 1, 0) if name == "unet" else (1, 1, 0, 1)
    x = _inputs((12, 12, 12), mask=mask)
    kwargs = {"z_mode": "mean"} if name == "u_hved" else {}
    expected = model(x, **kwargs)["seg_logits"].numpy()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(x, **kwargs)["seg_logits"], expected, rtol=1e-6, atol=1e-6)
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = build_model(name, seed=2, loss_weights={"kl": 0.5}, **options)
    fresh.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(fresh(x, **kwargs)["seg_logits"], expected, rtol=1e-6, atol=1e-6)


def test_seed_gives_the_same_initial_weights():
    a = build_model("u_hemis", seed=3, **SMALL)
    b = build_model("u_hemis", seed=3, **SMALL)
    c = build_model("u_hemis", seed=4, **SMALL)
    for va, vb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(va, vb)
    kernels = [w for w, v in zip(a.get_weights(), a.trainable_weights) if v.path.endswith("kernel")]
    other = [w for w, v in zip(c.get_weights(), c.trainable_weights) if v.path.endswith("kernel")]
    assert not np.array_equal(kernels[3], other[3])
    # NiftyNet's initialiser: truncated at 2 stddev, stddev sqrt(2 / fan_in) before truncation.
    big = [w for w in kernels if w.size > 2000][0]
    std = np.sqrt(2 / np.prod(big.shape[:-1]))
    assert np.abs(big).max() <= 2 * std + 1e-7
    assert big.std() == pytest.approx(0.8796 * std, rel=0.1)
