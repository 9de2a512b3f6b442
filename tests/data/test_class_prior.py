"""The prior correction (hved_tf.data.class_prior): class frequencies of volumes and of the
pipeline's windows against hand-computed expectations, the weights, the run file, and the
correction of probabilities (Bayes' rule, closed form)."""
import json

import numpy as np
import pytest

from hved_tf.config import InferenceOptions, ModelFacts, PipelineConfig
from hved_tf.data import class_prior
from hved_tf.data.cache import PreparedSubject, _class_indices
from hved_tf.inference.segmenter import model_facts, prior_corrected
from hved_tf.preprocessing.crop import CropBox


def _half_subject(shape=(8, 8, 8)):
    """Class 1 in the half x < 4, background in the other half."""
    label = np.zeros(shape, np.uint8)
    label[:4] = 1
    image = np.zeros((*shape, 4), np.float32)
    return PreparedSubject("half", image, label, np.ones(4, np.float32),
                           CropBox((0, 0, 0), shape, shape),
                           _class_indices(label, np.random.default_rng(0)))


def _pipeline(**kw):
    return PipelineConfig(**{"window": (4, 8, 8), "windows_per_volume": 500, "volume_padding": 0,
                             "spatial_augmentation": "window", "scaling": 0.0,
                             "flip_axes": (), **kw})


def test_volume_frequencies_count_voxels():
    a = np.zeros((2, 2, 2), np.uint8)
    a[0, 0, 0] = 3
    b = np.full((2, 2, 1), 2, np.uint8)
    np.testing.assert_allclose(class_prior.volume_frequencies([a, b]),
                               [7 / 12, 0, 4 / 12, 1 / 12])
    with pytest.raises(ValueError, match="No labelled voxel"):
        class_prior.volume_frequencies([np.zeros((0, 2, 2), np.uint8)])


def test_windows_as_large_as_the_volume_see_its_prior():
    subject = _half_subject()
    window = class_prior.window_frequencies([subject], _pipeline(window=(8, 8, 8),
                                                                 sampler="balanced"))
    np.testing.assert_allclose(window, [0.5, 0.5, 0, 0])
    assert class_prior.class_weights([0.5, 0.5, 0, 0], window) == (1.0, 1.0, 1.0, 1.0)


def test_balanced_windows_match_the_hand_computed_expectation():
    """Windows 4 voxels long along x, centred (then slid inside) on a voxel of a class chosen
    uniformly: a class-1 centre x in 0..3 gives the corners 0, 0, 0, 1 (class-1 fractions 1, 1,
    1, 3/4); a background centre x in 4..7 the corners 2, 3, 4, 4 (1/2, 1/4, 0, 0). Class 1:
    (15/16 + 3/16) / 2 = 9/16 of the windows' voxels against 1/2 of the volume's."""
    subject = _half_subject()
    window = class_prior.window_frequencies([subject], _pipeline(sampler="balanced"))
    np.testing.assert_allclose(window[:2], [7 / 16, 9 / 16], atol=0.015)
    weights = class_prior.class_weights([0.5, 0.5, 0, 0], [7 / 16, 9 / 16, 0, 0])
    np.testing.assert_allclose(weights, [1.0, 7 / 9, 7 / 8, 7 / 8],
                               rtol=1e-5)              # ratios 8/7, 8/9 and 1 (absent), over 8/7
    uniform = class_prior.window_frequencies([subject], _pipeline(sampler="uniform"))
    np.testing.assert_allclose(uniform[:2], [0.5, 0.5], atol=0.015)   # unbiased


def test_measure_and_read_back(tmp_path):
    prior = class_prior.measure([_half_subject()], _pipeline(sampler="balanced"))
    assert prior["sampler"] == "balanced" and prior["subjects"] == 1
    assert max(prior["weights"]) == 1.0 and min(prior["weights"]) > 0
    assert class_prior.read_class_weights(tmp_path) == ()            # no file: no correction
    (tmp_path / class_prior.CLASS_PRIOR_FILE).write_text(json.dumps(prior))
    assert class_prior.read_class_weights(tmp_path) == tuple(prior["weights"])
    for bad in ("{", json.dumps({"weights": [1, 0, 1, 1]}), json.dumps({"weights": [1, 2]})):
        (tmp_path / class_prior.CLASS_PRIOR_FILE).write_text(bad)
        with pytest.raises(ValueError, match="class_prior.json.*Delete"):
            class_prior.read_class_weights(tmp_path)


def test_prior_corrected_is_bayes_rule():
    probs = np.array([[0.4, 0.6, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    out = prior_corrected(probs, (1.0, 0.5, 1.0, 0.25))
    np.testing.assert_allclose(out[0], [0.4 / 0.7, 0.3 / 0.7, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(out[1], np.array([0.1, 0.1, 0.3, 0.1]) / 0.6, rtol=1e-6)
    assert out[0].argmax() == 0 and probs[0].argmax() == 1            # the border flips
    assert prior_corrected(probs, ()) is probs


def test_the_models_weights_are_in_force_unless_switched_off():
    class Trained:
        window, class_weights = (32, 32, 32), (1.0, 0.3, 0.3, 0.3)
    facts = model_facts(Trained)
    assert facts == ModelFacts(patch=(32, 32, 32), class_weights=(1.0, 0.3, 0.3, 0.3))
    assert facts.weights_for(InferenceOptions()) == (1.0, 0.3, 0.3, 0.3)
    assert facts.weights_for(InferenceOptions(prior_correction=False)) == ()
    with pytest.raises(ValueError, match="4 positive class weights"):
        ModelFacts(class_weights=(1.0, 0.0, 1.0, 1.0)).validate()
    from hved_tf.protocols import describe_inference, protocol_options
    assert "class prior corrected (1, 0.3, 0.3, 0.3)" in describe_inference(InferenceOptions(),
                                                                           facts)
    assert "whole volume (else 32x32x32 windows)" in describe_inference(InferenceOptions(),
                                                                      facts)
    original = protocol_options("original", InferenceOptions())
    assert not original.prior_correction and facts.weights_for(original) == ()
