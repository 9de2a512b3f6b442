"""The export's prior correction and ETpp rule (TensorFlow, in its graph) equal the NumPy ones
predict and evaluate use, on random probabilities and hand-made label volumes."""
import numpy as np
import pytest
import tensorflow as tf

from hved_tf.inference.postprocess import postprocess
from hved_tf.inference.segmenter import prior_corrected
from hved_tf.serving.export import etpp_tf, prior_corrected_tf


@pytest.mark.parametrize("weights", [(), (1.0, 0.302, 0.303, 0.298)])
def test_prior_correction_agrees(weights):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(3, 5, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(prior_corrected_tf(tf.constant(probs), weights).numpy(),
                               prior_corrected(probs, weights), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("enhancing_voxels,threshold", [(0, 5), (3, 5), (5, 5), (7, 5), (3, 0)])
def test_etpp_agrees(enhancing_voxels, threshold):
    labels = np.zeros((6, 6, 6), np.int32)
    labels[1:3, 1:3, 1:3] = 1
    labels.reshape(-1)[100:100 + enhancing_voxels] = 3
    expected = postprocess(labels, et_threshold=threshold)
    np.testing.assert_array_equal(etpp_tf(tf.constant(labels), threshold).numpy(), expected)
    relabelled = 0 < enhancing_voxels < threshold
    assert (expected == 3).sum() == (0 if relabelled else enhancing_voxels)
