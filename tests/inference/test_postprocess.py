"""Post-processing: RFNet's ETpp rule and connected-component removal on hand-built labels;
the export's in-graph ET rule equals the NumPy one."""
import numpy as np
import pytest

from hved_tf.config import InferenceOptions
from hved_tf.inference.postprocess import postprocess


def _labels():
    labels = np.zeros((30, 30, 30), np.uint8)
    labels[5:15, 5:15, 5:15] = 2                 # 1000 oedema voxels
    labels[8:12, 8:12, 8:12] = 3                 # 64 enhancing inside
    labels[25:27, 25:27, 25:27] = 2              # an 8-voxel blob far away
    return labels


def test_et_rule_relabels_few_enhancing_voxels_as_necrosis():
    labels = _labels()
    out = postprocess(labels, et_threshold=500)
    assert not (out == 3).any() and (out == 1).sum() == 64
    assert (out == 2).sum() == (labels == 2).sum()
    kept = postprocess(labels, et_threshold=64)             # 64 is not fewer than 64
    np.testing.assert_array_equal(kept, labels)
    np.testing.assert_array_equal(postprocess(labels), labels)       # off
    assert labels[10, 10, 10] == 3                          # the input is not changed


def test_small_and_all_but_the_largest_components_are_removed():
    labels = _labels()
    out = postprocess(labels, min_component=9)
    assert out[25:27, 25:27, 25:27].sum() == 0
    np.testing.assert_array_equal(out[:20, :20, :20], labels[:20, :20, :20])
    np.testing.assert_array_equal(postprocess(labels, min_component=8), labels)
    largest = postprocess(labels, largest_component=True)
    np.testing.assert_array_equal(largest, out)
    assert postprocess(np.zeros((4, 4, 4), np.uint8), min_component=5).sum() == 0


def test_options_refuse_negative_thresholds():
    with pytest.raises(ValueError, match="--et_threshold"):
        InferenceOptions(et_threshold=-1).validate()
    assert InferenceOptions(min_component=3).postprocessing
    assert not InferenceOptions().postprocessing


def test_the_exports_et_rule_equals_the_numpy_rule(tiny_run):
    import tensorflow as tf

    from hved_tf.inference.loading import load_trained
    from hved_tf.modalities import LABEL_CONVENTIONS
    from hved_tf.serving.export import ServingModule

    trained = load_trained(tiny_run)
    module = ServingModule(trained.model, "brats2018", InferenceOptions(et_threshold=30),
                           landmarks=trained.landmarks)
    for enhancing in (20, 40):
        classes = np.zeros((12, 12, 12), np.int64)
        classes[2:5, 2:5, 2:5] = 2
        classes.reshape(-1)[:enhancing] = 3
        probs = np.eye(4, dtype=np.float32)[classes]
        out = module._outputs(tf.constant(probs), tf.zeros([12, 12, 12, 1]),
                              tf.zeros([12, 12, 12, 4]))
        expected = np.asarray(LABEL_CONVENTIONS["brats2018"])[
            postprocess(classes.astype(np.uint8), et_threshold=30)]
        np.testing.assert_array_equal(out["seg_labels"].numpy(), expected)
