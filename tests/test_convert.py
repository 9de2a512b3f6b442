"""The converter: name map against the release's variable lists, TF1 checkpoints, forward pass."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import read_variable_list
from hved_tf.convert import load_niftynet_checkpoint, niftynet_name_map
from hved_tf.models import build_model
import numpy_reference as ref


@pytest.mark.parametrize("name,tsv,count,weights", [
    ("u_hved", "niftynet_u_hved_variables.tsv", 195, 1_250_552),
    ("u_hemis", "niftynet_u_hemis_variables.tsv", 119, 565_888),
])
def test_name_map_covers_reference_one_to_one(reference, name, tsv, count, weights):
    expected = read_variable_list(reference / tsv)
    model = build_model(name)
    mapping = niftynet_name_map(model)
    assert set(mapping) == set(expected)
    for orig, var in mapping.items():
        assert tuple(var.shape) == expected[orig], orig
    # One to one: every model weight appears exactly once.
    assert len({id(v) for v in mapping.values()}) == len(model.trainable_weights) == count
    assert sum(int(np.prod(s)) for s in expected.values()) == weights


def _write_tf1_checkpoint(prefix, values, extra_optimizer_state=True):
    """A checkpoint as the release's TF1 Saver wrote it (names, plus Adam slots)."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {}
        for name, value in values.items():
            variables[name] = tf.compat.v1.Variable(value, name=name)
            if extra_optimizer_state:
                for slot in ("Adam", "Adam_1"):
                    variables[f"{name}/{slot}"] = tf.compat.v1.Variable(
                        np.zeros_like(value), name=f"{name}/{slot}")
        if extra_optimizer_state:
            for name in ("ApplyGradients/beta1_power", "ApplyGradients/beta2_power"):
                variables[name] = tf.compat.v1.Variable(0.9, name=name)
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(prefix))


def _random_weights(mapping, rng):
    values = {}
    for name, var in mapping.items():
        shape = tuple(var.shape)
        if name.endswith("gamma"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("beta"):
            values[name] = rng.normal(0, 0.2, shape).astype(np.float32)
        else:
            fan_in = np.prod(shape[:-1])
            values[name] = rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    return values


@pytest.mark.parametrize("name", ["u_hved", "u_hemis"])
def test_checkpoint_loads_and_forward_matches_numpy(tmp_path, name):
    rng = np.random.default_rng(0)
    model = build_model(name)
    values = _random_weights(niftynet_name_map(model), rng)
    prefix = _write_tf1_checkpoint(tmp_path / "model.ckpt-60000", values)
    assert load_niftynet_checkpoint(model, prefix) == len(values)
    for orig, var in niftynet_name_map(model).items():
        np.testing.assert_array_equal(var.numpy(), values[orig], err_msg=orig)

    shape = (25, 28, 24)  # odd sizes exercise SAME pooling and the legacy resize
    image = rng.normal(0, 1, (1, *shape, 4)).astype(np.float32)
    w64 = {k: v.astype(np.float64) for k, v in values.items()}
    for present in ([1, 1, 1, 1], [0, 1, 0, 1]):
        mask = np.asarray([present], np.float32)
        if name == "u_hved":
            out = model({"image": image, "mask": mask}, z_mode="mean")
            seg, recon = ref.u_hved_forward(image[0].astype(np.float64), w64, present)
            # 1e-4 of the range: on CPUs with AVX-512/AMX, oneDNN's float32 convolutions round
            # differently, and 2 voxels of 67,200 (near a leaky-ReLU kink) moved by 5e-5 of the
            # range (1e-5 holds with TF_ENABLE_ONEDNN_OPTS=0).
            np.testing.assert_allclose(out["recon"][0], recon, rtol=1e-5,
                                       atol=1e-4 * np.abs(recon).max())
        else:
            out = model({"image": image, "mask": mask})
            seg = ref.u_hemis_forward(image[0].astype(np.float64), w64, present)
        np.testing.assert_allclose(out["seg_logits"][0], seg, rtol=1e-5,
                                   atol=1e-5 * np.abs(seg).max())


def test_wrong_checkpoint_is_refused_with_every_problem_listed(tmp_path):
    rng = np.random.default_rng(1)
    hemis = build_model("u_hemis")
    values = _random_weights(niftynet_name_map(hemis), rng)
    prefix = _write_tf1_checkpoint(tmp_path / "hemis.ckpt", values)
    model = build_model("u_hved")
    before = [v.numpy().copy() for v in model.trainable_weights]
    with pytest.raises(ValueError) as err:
        load_niftynet_checkpoint(model, prefix)
    message = str(err.value)
    assert "missing from the checkpoint" in message
    assert "VAE/ConvDecoderImg/final_conv_seg_4/conv_/w" in message
    assert "shape mismatch" in message and "block_1_T1/conv_1/w" in message
    assert "Adam" not in message  # optimiser slots are ignored, not reported
    for b, v in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(b, v.numpy())  # nothing assigned


def test_unexpected_variable_is_reported(tmp_path):
    rng = np.random.default_rng(2)
    model = build_model("u_hemis")
    values = _random_weights(niftynet_name_map(model), rng)
    values["VAE/ConvEncoder/block_9_T1/conv_0/w"] = np.zeros((1,), np.float32)
    prefix = _write_tf1_checkpoint(tmp_path / "x.ckpt", values, extra_optimizer_state=False)
    with pytest.raises(ValueError, match="unexpected in the checkpoint"):
        load_niftynet_checkpoint(model, prefix)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Cannot read a TensorFlow checkpoint"):
        load_niftynet_checkpoint(build_model("u_hemis"), tmp_path / "nothing.ckpt")


def test_convert_tool_writes_weights_that_load(tmp_path):
    from hved_tf.convert_checkpoint import PROGRAM
    rng = np.random.default_rng(3)
    model = build_model("u_hemis")
    values = _random_weights(niftynet_name_map(model), rng)
    prefix = _write_tf1_checkpoint(tmp_path / "model.ckpt-60000", values)
    out = tmp_path / "out" / "hemis.weights.h5"
    assert PROGRAM.call(["--model=u_hemis", f"--checkpoint={prefix}", f"--output={out}"]) == 0
    fresh = build_model("u_hemis")
    fresh.load_weights(out)
    for orig, var in niftynet_name_map(fresh).items():
        np.testing.assert_array_equal(var.numpy(), values[orig])
    # A mismatching model: an error, and no file written.
    bad = tmp_path / "bad.weights.h5"
    assert PROGRAM.call(["--model=u_hved", f"--checkpoint={prefix}", f"--output={bad}"]) == 2
    assert not bad.exists() and not list(tmp_path.glob(".bad*"))
