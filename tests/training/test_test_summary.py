"""The end-of-training test's summary: per-subject scores averaged per subset, and the
enhancing-tumour Dice with and without T1c over the subjects that have an enhancing part."""
import types

import numpy as np
import pytest

from hved_tf.config import TrainConfig
from hved_tf.modalities import SUBSET_CODES
from hved_tf.training.callbacks import enhancing_by_t1c, mean_scores


def _subject(sid, enhancing):
    label = np.zeros((4, 4, 4), np.uint8)
    label[1, 1, 1] = 3 if enhancing else 1
    return types.SimpleNamespace(id=sid, label=label)


def test_enhancing_dice_with_and_without_t1c_by_hand():
    d = lambda wt, et: {"whole_tumour": wt, "tumour_core": 0.5, "enhancing": et}  # noqa: E731
    scores = {"T1c": {"a": d(0.8, 0.9), "b": d(0.6, 0.7), "c": d(0.5, 1.0)},
              "T1c+FLAIR": {"a": d(0.9, 0.8), "b": d(0.7, 0.6), "c": d(0.5, 1.0)},
              "FLAIR": {"a": d(0.7, 0.2), "b": d(0.5, 0.4), "c": d(0.4, 1.0)}}
    subjects = [_subject("a", True), _subject("b", True), _subject("c", False)]
    out = enhancing_by_t1c(scores, subjects)
    # c has no enhancing part: left out (its empty/empty Dice of 1 would flatter both groups).
    assert out["with_t1c"] == pytest.approx((0.9 + 0.7 + 0.8 + 0.6) / 4)
    assert out["without_t1c"] == pytest.approx((0.2 + 0.4) / 2)
    assert out["gap"] == pytest.approx(0.75 - 0.3) and out["subjects"] == 2
    assert mean_scores(scores)["FLAIR"]["whole_tumour"] == pytest.approx((0.7 + 0.5 + 0.4) / 3)
    assert enhancing_by_t1c({"T1c": scores["T1c"]}, subjects) is None     # one group only


def test_test_subsets_all_and_default():
    assert TrainConfig(run_dir="r").validate().test_subsets == ()
    config = TrainConfig(run_dir="r", test_subsets=("all",)).validate()
    assert config.test_subsets == tuple(SUBSET_CODES)
    again = TrainConfig.from_dict(config.to_dict()).validate()
    assert again.test_subsets == tuple(SUBSET_CODES)
    with pytest.raises(ValueError, match="--test_subsets"):
        TrainConfig(run_dir="r", test_subsets=("T5",)).validate()


def test_test_samples():
    """The end-of-training test averages --test_samples z draws (default: the posterior mean,
    as validation); the release's protocol keeps its one random draw; bad counts are refused
    naming the flag; old run configs without it read as 1."""
    from hved_tf.training.app import final_test_options as options
    config = TrainConfig(run_dir="r").validate()
    assert options(config).num_samples == 1 and not options(config).single_draw
    assert options(config).window == config.validation.window
    config = TrainConfig(run_dir="r", test_samples=10).validate()
    assert options(config).num_samples == 10 and config.validation.num_samples == 1
    original = TrainConfig(run_dir="r", test_samples=10, test_protocol="original").validate()
    assert options(original).num_samples == 1 and options(original).single_draw
    old = config.to_dict()
    del old["test_samples"]
    assert TrainConfig.from_dict(old).validate().test_samples == 1
    assert TrainConfig.from_dict(config.to_dict()).validate().test_samples == 10
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="--test_samples"):
            TrainConfig(run_dir="r", test_samples=bad).validate()
