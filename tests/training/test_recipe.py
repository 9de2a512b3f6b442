"""The training recipe's choices: the learning-rate schedules, the subjects the landmarks are
trained on, and run folders written before the release's sampling keeping theirs."""
import dataclasses
import json

import pytest

from hved_tf.config import DataConfig, OptimConfig, TrainConfig
from hved_tf.data import prepare
from hved_tf.training.app import learning_rate_schedule


@pytest.mark.parametrize("schedule,expected", [
    ("step", {0: 1e-3, 9_999: 1e-3, 10_000: 2.5e-4, 50_000: 1e-3 * 0.25 ** 5}),
    ("constant", {0: 1e-3, 10_000: 1e-3, 50_000: 1e-3}),
    # nnU-Net's rule in closed form: 1e-3 * (1 - t / 10000) ** 0.9.
    ("poly", {0: 1e-3, 5_000: 1e-3 * 0.5 ** 0.9, 9_000: 1e-3 * 0.1 ** 0.9, 10_000: 0.0,
              20_000: 0.0}),
])
def test_learning_rate_schedules(schedule, expected):
    rate = learning_rate_schedule(OptimConfig(lr_schedule=schedule).validate())
    for step, value in expected.items():
        assert float(rate(step) if callable(rate) else rate) == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize("asked,used", [(0, 7), (3, 3)])
def test_landmarks_are_trained_on_every_training_subject_unless_told(tmp_path, monkeypatch,
                                                                     asked, used):
    read = []
    monkeypatch.setattr(prepare, "load_subject_image", lambda s: (read.append(s) or (s, None)))
    monkeypatch.setattr(prepare, "train_landmarks", lambda images: (
        list(images), {m: list(range(13)) for m in ("T1", "T1c", "T2", "FLAIR")})[1])
    monkeypatch.setattr(prepare, "write_niftynet_landmarks", lambda path, landmarks: None)
    subjects = [f"s{i}" for i in range(7)]
    prepare.landmarks_for(DataConfig(landmark_subjects=asked), subjects, tmp_path)
    assert read == subjects[:used]


def test_a_run_config_from_before_the_release_sampling_keeps_its_own(tmp_path):
    config = TrainConfig().validate().to_dict()
    assert config["pipeline"]["spatial_augmentation"] == "release"
    for key in ("volume_padding", "spatial_augmentation"):
        del config["pipeline"][key]
    old = TrainConfig.from_dict(json.loads(json.dumps(config)))
    assert old.pipeline.spatial_augmentation == "window" and old.pipeline.volume_padding == 0
    assert dataclasses.asdict(TrainConfig.from_dict(TrainConfig().validate().to_dict())) == \
        dataclasses.asdict(TrainConfig().validate())


def test_rotation_belongs_to_per_window_augmentation():
    from hved_tf.config import PipelineConfig
    with pytest.raises(ValueError, match="--rotation"):
        PipelineConfig(rotation_degrees=10.0).validate()
    PipelineConfig(rotation_degrees=10.0, spatial_augmentation="window").validate()
