"""Where a run stands against its recipe's benchmark of record
(hved_tf.training.quality_record), on a hand-made record."""
from hved_tf.config import TrainConfig
from hved_tf.training.quality_record import comparable, standing


def _record(config):
    return {"name": "demo", "seeds": [0, 1, 2], "test_subjects": 48,
            "report": "docs/benchmarks/quality/demo.md", "config": comparable(config),
            "figures": {"wt_all4": [0.86, 0.88, 0.90], "et_gap": [0.40, 0.55, 0.70]}}


def test_per_seed_settings_do_not_make_another_recipe():
    a = TrainConfig(run_dir="runs/a").validate().to_dict()
    b = TrainConfig(run_dir="runs/b").validate().to_dict()
    b["model"]["seed"], b["data"]["cache_dir"] = 3, "/tmp/cache"
    assert comparable(a) == comparable(b)
    assert a["run_dir"] == "runs/a"                      # the argument is left as it was


def test_a_run_of_the_recipe_is_placed_in_the_range():
    config = TrainConfig().validate().to_dict()
    lines = standing(config, 5, 0.83, 0.62, _record(config))
    assert "seeds 0, 1, 2, 48 test phantoms" in lines[0] and "5 held-out" in lines[0]
    assert "benchmark mean 0.880, seeds 0.860 to 0.900; this run 0.830, below every " \
        "benchmarked seed" in lines[1]
    assert "benchmark mean +0.550, seeds +0.400 to +0.700; this run +0.620, within" in lines[2]
    assert "this run" not in standing(config, 5, 0.9, None, _record(config))[2]


def test_another_recipe_or_no_record_says_nothing():
    config = TrainConfig().validate().to_dict()
    other = TrainConfig(steps=10).validate().to_dict()
    assert standing(other, 5, 0.8, 0.5, _record(config)) == []
    assert standing(config, 5, 0.8, 0.5, None) == []
