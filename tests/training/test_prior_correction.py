"""--prior_correction beyond training (tests/training/test_train.py checks the run writes and
uses class_prior.json): the loader, evaluate's segmenter, ensembles and exports pick the weights
up from a run folder; --noprior_correction and a run trained without the flag correct nothing."""
import dataclasses
import json
import shutil

import numpy as np

from hved_tf.config import InferenceOptions, ModelFacts
from hved_tf.data.class_prior import CLASS_PRIOR_FILE
from hved_tf.inference.segmenter import prior_corrected, whole_box

WEIGHTS = (1.0, 0.3, 0.5, 0.25)


def _corrected_run(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / CLASS_PRIOR_FILE).write_text(json.dumps({"weights": list(WEIGHTS)}))
    return run_dir


def test_a_run_folders_weights_reach_every_segmenter(tiny_run, tmp_path):
    from hved_tf.inference.loading import keras_segmenter, load_trained, open_segmenter

    run_dir = _corrected_run(tiny_run, tmp_path)
    trained = load_trained(run_dir)
    assert trained.class_weights == WEIGHTS
    assert load_trained(tiny_run).class_weights == ()
    options = InferenceOptions(window=(32, 32, 32), num_samples=1)
    corrected = keras_segmenter(trained, options, synthesise=False)
    plain = keras_segmenter(trained, dataclasses.replace(options, prior_correction=False),
                            synthesise=False)
    assert corrected.class_weights == WEIGHTS and plain.class_weights == ()
    image = np.random.default_rng(0).normal(size=(32, 32, 32, 4)).astype(np.float32)
    mask = np.ones(4, np.float32)
    a = corrected.segment_prepared_image(image, mask, whole_box((32, 32, 32)))
    b = plain.segment_prepared_image(image, mask, whole_box((32, 32, 32)))
    np.testing.assert_allclose(a.outputs["probabilities"],
                               prior_corrected(b.outputs["probabilities"], WEIGHTS), atol=1e-6)
    np.testing.assert_array_equal(a.labels, np.argmax(a.outputs["probabilities"], -1))
    ensemble = open_segmenter([run_dir, tiny_run], options=options)
    assert [m.class_weights for m in ensemble.members] == [WEIGHTS, ()]
    assert ensemble.class_weights == ()           # each member corrects its own


def test_training_without_the_flag_removes_an_old_prior(tiny_run, tmp_path):
    from hved_tf.config import TrainConfig
    from hved_tf.inference.loading import load_trained
    from hved_tf.training.app import class_prior

    run_dir = _corrected_run(tiny_run, tmp_path)
    config = TrainConfig.from_dict(json.loads((run_dir / "run_config.json").read_text()))
    assert not config.prior_correction                    # the default, and old run configs
    assert class_prior(config, {"train": []}, run_dir, chief=True) == ()
    assert not (run_dir / CLASS_PRIOR_FILE).exists()
    assert load_trained(run_dir).class_weights == ()


def test_the_export_corrects_as_the_numpy_rule(tiny_run):
    import tensorflow as tf

    from hved_tf.inference.loading import load_trained
    from hved_tf.serving.export import ServingModule

    trained = load_trained(tiny_run)
    module = ServingModule(trained.model, "brats2023", InferenceOptions(),
                           landmarks=trained.landmarks, facts=ModelFacts(class_weights=WEIGHTS))
    assert ServingModule(trained.model, "brats2023", InferenceOptions(prior_correction=False),
                         landmarks=trained.landmarks,
                         facts=ModelFacts(class_weights=WEIGHTS)).class_weights == ()
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=(6, 6, 6)).astype(np.float32)
    out = module._outputs(tf.constant(probs), tf.zeros([6, 6, 6, 1]), tf.zeros([6, 6, 6, 4]))
    expected = prior_corrected(probs, WEIGHTS)
    np.testing.assert_allclose(out["seg_probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(out["seg_labels"].numpy(), expected.argmax(-1))
