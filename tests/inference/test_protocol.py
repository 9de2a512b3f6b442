"""The release's evaluation protocol: its settings, its aggregation (border cut, later windows
overwriting earlier ones) against a tiling computed by hand, one random draw of the latents."""
import numpy as np
import pytest
import tensorflow as tf

from hved_tf.config import InferenceOptions
from hved_tf.protocols import protocol_options, protocol_weights
from hved_tf.inference.windows import Tiling, sliding_window
from hved_tf.models import build_model


def test_original_protocol_settings():
    options = protocol_options("original", InferenceOptions(window=(64, 64, 64), num_samples=10))
    assert options.window == (128, 128, 128) and options.border == 10
    assert options.overlap == 0.0 and options.blend == "overwrite"
    assert options.num_samples == 1 and options.single_draw
    assert protocol_options("default", InferenceOptions(num_samples=3)).num_samples == 3
    assert protocol_weights("original") == "final" and protocol_weights("default") == "best"
    assert protocol_weights("original", "best") == "best"
    with pytest.raises(ValueError, match="--protocol"):
        protocol_options("nnunet")
    with pytest.raises(ValueError, match="--weights"):
        protocol_weights("default", "last")


def test_scoring_protocols():
    """paper/brats/rfnet: the same inference flags, their own post-processing and scoring; the
    old name of the paper's protocol ("default", in run configs) still means it."""
    from hved_tf.config import TrainConfig
    from hved_tf.protocols import protocol_name, protocol_scoring
    flags = InferenceOptions(num_samples=3)
    for name in ("paper", "brats", "default"):
        assert protocol_options(name, flags) == flags.validate()
    assert protocol_options("rfnet", flags).et_threshold == 500
    assert protocol_options("rfnet", InferenceOptions(et_threshold=200)).et_threshold == 200
    assert protocol_name("default") == "paper"
    assert protocol_scoring("paper").hd95_penalty is None
    assert protocol_scoring("brats").hd95_penalty == 374.0
    assert protocol_scoring("brats").table_metrics[0] == "lesion_dice"
    assert protocol_scoring("rfnet").table_metrics == ("dice", "dice_pp")
    old = TrainConfig(run_dir="r").validate().to_dict()
    old["test_protocol"] = "default"
    assert TrainConfig.from_dict(old).validate().test_protocol == "paper"


def test_overwrite_aggregation_equals_a_tiling_by_hand():
    """Windows of 12 with a border of 2 (interior 8) on an axis of 20: interiors start at 0, 8
    and 12 (the last slid back to end at 20). Each window outputs, at each voxel, its own
    number (1, 2, 3 in order) times 100 plus the voxel's position inside the window; with the
    border cut and later windows overwriting earlier ones, voxel x holds the last window that
    covers it and its position x - start + 2 there."""
    calls = []

    def predict(windows):
        out = np.zeros(windows.shape[:4] + (1,), np.float32)
        for k in range(len(windows)):
            calls.append(len(calls) + 1)
            local = np.arange(windows.shape[1], dtype=np.float32)[:, None, None]
            out[k, ..., 0] = 100 * calls[-1] + local
        return {"value": out}

    volume = np.zeros((20, 8, 8, 1), np.float32)
    result = sliding_window(predict, volume, (12, 12, 12),
                            Tiling(border=2, overlap=0.0, blend="overwrite"))["value"][:, 0, 0, 0]
    expected = []
    for x in range(20):
        window, start = (1, 0) if x < 8 else (2, 8) if x < 12 else (3, 12)
        expected.append(100 * window + (x - start + 2))
    np.testing.assert_array_equal(result, expected)
    assert calls == [1, 2, 3]
    # With averaging instead, the overlap [12, 16) mixes windows 2 and 3.
    calls.clear()
    mean = sliding_window(predict, volume, (12, 12, 12),
                          Tiling(border=2, blend="constant"))["value"]
    assert mean[13, 0, 0, 0] == pytest.approx(((200 + 13 - 8 + 2) + (300 + 13 - 12 + 2)) / 2)


def test_one_random_draw_is_repeatable_and_not_the_posterior_mean():
    model = build_model("u_hved", base_filters=4, levels=3, seed=0)
    rng = np.random.default_rng(0)
    inputs = {"image": tf.constant(rng.normal(size=(1, 16, 16, 16, 4)), tf.float32),
              "mask": tf.constant([[1.0, 1.0, 0.0, 1.0]])}
    mean = model.infer(inputs, num_samples=1)["seg_probabilities"].numpy()
    draw = model.infer(inputs, num_samples=1, seed=5, single_draw=True)
    again = model.infer(inputs, num_samples=1, seed=5, single_draw=True)
    other = model.infer(inputs, num_samples=1, seed=6, single_draw=True)
    probs = draw["seg_probabilities"].numpy()
    np.testing.assert_array_equal(probs, again["seg_probabilities"].numpy())
    assert np.abs(probs - mean).max() > 1e-4
    assert np.abs(probs - other["seg_probabilities"].numpy()).max() > 1e-4
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert float(tf.reduce_max(draw["seg_variance"])) == 0.0
