"""Ensembles: the members' probabilities averaged (checked against the members run one by one),
the spread over members in the variance, members with their own landmarks, and the refusals."""
import dataclasses
import json

import numpy as np
import pytest

from conftest import make_run_dir
from hved_tf.config import InferenceOptions
from hved_tf.data.synthetic import make_phantom
from hved_tf.inference.ensemble import EnsembleSegmenter
from hved_tf.inference.loading import keras_segmenter, load_trained, open_segmenter
from hved_tf.modalities import MODALITIES

OPTIONS = InferenceOptions(window=(32, 32, 32), overlap=0.0, num_samples=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    a = make_run_dir(root / "a", seed=1)
    b = make_run_dir(root / "b", seed=2)
    return a, b


def _raw_image():
    volumes, _ = make_phantom((32, 32, 32), seed=[3, 1])
    return np.stack([volumes[m] for m in MODALITIES], axis=-1)


def test_probabilities_are_the_mean_of_the_members(runs):
    image, mask = _raw_image(), np.array([1.0, 1.0, 0.0, 1.0])
    members = [load_trained(r) for r in runs]
    alone = [keras_segmenter(m, OPTIONS).segment_raw(image, mask) for m in members]
    together = open_segmenter(list(runs), options=OPTIONS).segment_raw(image, mask)
    probs = [a.outputs["probabilities"] for a in alone]
    assert not np.allclose(probs[0], probs[1], atol=1e-3)      # two different models
    mean = (probs[0] + probs[1]) / 2
    np.testing.assert_allclose(together.outputs["probabilities"], mean, atol=1e-6)
    np.testing.assert_array_equal(together.labels, np.argmax(mean, axis=-1))
    # Law of total variance: the members' mean variance plus the variance of their means.
    between = (((probs[0] - mean) ** 2 + (probs[1] - mean) ** 2) / 2).sum(-1)
    within = (alone[0].outputs["variance"] + alone[1].outputs["variance"]) / 2
    np.testing.assert_allclose(together.outputs["variance"], within + between, atol=1e-6)
    np.testing.assert_allclose(together.outputs["recon"],
                               (alone[0].outputs["recon"] + alone[1].outputs["recon"]) / 2,
                               atol=1e-5)


@pytest.mark.slow
def test_members_with_their_own_landmarks_are_prepared_with_them(runs, tmp_path):
    from hved_tf.preprocessing.histogram import (read_niftynet_landmarks,
                                                 write_niftynet_landmarks)
    other = tmp_path / "c"
    other.mkdir()
    for name in ("run_config.json", "model.weights.h5"):
        (other / name).write_bytes((runs[1] / name).read_bytes())
    landmarks = read_niftynet_landmarks(runs[1] / "hist.txt")
    write_niftynet_landmarks(other / "hist.txt", {m: np.asarray(v) * 1.5 + 3.0
                                                  for m, v in landmarks.items()})
    ensemble = open_segmenter([runs[0], other], options=OPTIONS)
    assert len(ensemble.landmark_sets) == 2
    image, mask = _raw_image(), np.ones(4)
    members = [load_trained(runs[0]), load_trained(other)]
    alone = [keras_segmenter(m, OPTIONS).segment_raw(image, mask) for m in members]
    together = ensemble.segment_raw(image, mask)
    mean = (alone[0].outputs["probabilities"] + alone[1].outputs["probabilities"]) / 2
    np.testing.assert_allclose(together.outputs["probabilities"], mean, atol=1e-6)
    with pytest.raises(ValueError, match="different landmarks"):
        ensemble.segment_prepared(None, mask)


def test_post_processing_runs_once_on_the_average(runs):
    options = dataclasses.replace(OPTIONS, min_component=10_000_000)   # removes everything
    ensemble = open_segmenter(list(runs), options=options)
    assert all(m.options.min_component == 0 for m in ensemble.members)
    seg = ensemble.segment_raw(_raw_image(), np.ones(4))
    assert not seg.labels.any() and "labels_raw" in seg


def test_an_ensemble_of_different_patches_or_classes_or_an_export_is_refused(runs, tmp_path):
    from hved_tf.models import build_model
    odd = tmp_path / "odd.keras"
    model = build_model("u_hved", base_filters=4, levels=3, num_classes=3)
    model.infer({"image": np.zeros((1, 32, 32, 32, 4), np.float32),
                 "mask": np.ones((1, 4), np.float32)}, num_samples=1)
    model.save(odd)
    with pytest.raises(ValueError, match="numbers of classes.*leave the odd one out"):
        open_segmenter([runs[0], odd], options=OPTIONS)
    patch = tmp_path / "patch"
    make_run_dir(patch)
    config = json.loads((patch / "run_config.json").read_text())
    config["pipeline"]["window"] = [16, 16, 16]
    (patch / "run_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="training patches.*32x32x32.*16x16x16"):
        open_segmenter([runs[0], patch], options=OPTIONS)
    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="is an export.*cannot join an ensemble"):
        open_segmenter([runs[0], export], options=OPTIONS)
    with pytest.raises(ValueError, match="at least two"):
        EnsembleSegmenter([load_trained(runs[0])], OPTIONS)


@pytest.mark.slow
def test_members_of_two_kinds_average_and_only_one_synthesises(runs, tmp_path):
    hemis = make_run_dir(tmp_path / "hemis", name="u_hemis")
    image, mask = _raw_image(), np.ones(4)
    alone = [keras_segmenter(load_trained(p), OPTIONS).segment_raw(image, mask)
             for p in (runs[0], hemis)]
    together = open_segmenter([runs[0], hemis], options=OPTIONS).segment_raw(image, mask)
    probs = [a.outputs["probabilities"] for a in alone]
    mean = (probs[0] + probs[1]) / 2
    np.testing.assert_allclose(together.outputs["probabilities"], mean, atol=1e-6)
    between = (((probs[0] - mean) ** 2 + (probs[1] - mean) ** 2) / 2).sum(-1)
    within = alone[0].outputs["variance"] / 2          # U-HeMIS draws no z: no variance
    np.testing.assert_allclose(together.outputs["variance"], within + between, atol=1e-6)
    np.testing.assert_allclose(together.outputs["recon"], alone[0].outputs["recon"], atol=1e-6)
