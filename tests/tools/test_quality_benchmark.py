"""The quality benchmark's bookkeeping (tools/benchmarks/quality.py): recipe records, refusals,
resuming, the test set's checks and the figures of one run, on hand-made inputs (training and
evaluation replaced by stand-ins)."""
import json

import pytest

from conftest import REPO, tool_module
from hved_tf.modalities import SUBSET_CODES

bq = tool_module("tools/benchmarks/quality.py")
DEMO = REPO / "configs" / "demo.cfg"


def test_recipe_resolves_the_flagfile_and_overrides():
    recipe = bq.recipe_record(DEMO, ["steps=10"], ["noprior_correction"])
    assert recipe["train_flags"]["steps"] == 10
    assert recipe["train_flags"]["demo_voxel_mm"] == 4.0          # from the flagfile
    assert recipe["train_flags"]["levels"] == 4                   # a default
    assert "seed" not in recipe["train_flags"]
    with pytest.raises(bq.BenchmarkError, match="sets --seed itself"):
        bq.recipe_record(DEMO, ["seed=3"], [])
    with pytest.raises(bq.BenchmarkError, match="stepz"):
        bq.recipe_record(DEMO, ["stepz=3"], [])


def test_a_seed_recorded_with_other_flags_is_refused_naming_the_flag(tmp_path):
    seed_dir = tmp_path / "seed0"
    seed_dir.mkdir()
    bq.check_record(seed_dir, bq.recipe_record(DEMO, [], []))
    assert json.loads((seed_dir / "recipe.json").read_text())["train_flags"]["steps"] == 3000
    bq.check_record(seed_dir, bq.recipe_record(DEMO, [], []))      # the same recipe: fine
    with pytest.raises(bq.BenchmarkError, match=r"--steps \(recorded 3000, now 2000\)"):
        bq.check_record(seed_dir, bq.recipe_record(DEMO, ["steps=2000"], []))
    with pytest.raises(bq.BenchmarkError, match="eval_set"):
        bq.check_record(seed_dir, bq.recipe_record(DEMO, [], ["noprior_correction"]))
    # A record of older code, without a flag added since: that flag counts at its default.
    older = json.loads((seed_dir / "recipe.json").read_text())
    del older["train_flags"]["release_label_filtering"]
    (seed_dir / "recipe.json").write_text(json.dumps(older))
    bq.check_record(seed_dir, bq.recipe_record(DEMO, [], []))
    with pytest.raises(bq.BenchmarkError, match="release_label_filtering"):
        bq.check_record(seed_dir, bq.recipe_record(DEMO, ["release_label_filtering",
                                                          "spatial_augmentation=release"], []))
    other = tmp_path / "seed1"
    (other / "run").mkdir(parents=True)
    with pytest.raises(bq.BenchmarkError, match="no recipe record"):
        bq.check_record(other, bq.recipe_record(DEMO, [], []))


def test_only_demo_recipes_are_benchmarked():
    flags = bq.recipe_record(DEMO, [], [])["train_flags"]
    assert bq.demo_voxel_mm(flags) == 4.0
    with pytest.raises(bq.BenchmarkError, match="--data_root=demo"):
        bq.demo_voxel_mm({**flags, "data_root": "/data/brats"})


def _fake_test_set(folder, voxel_mm=4.0, n=40, enhancing=30):
    from hved_tf.data.anatomy import GENERATOR_VERSION
    ids = [f"S{i:02d}" for i in range(n)]
    folder.mkdir(parents=True)
    (folder / "testset.json").write_text(json.dumps({
        "generator_version": GENERATOR_VERSION, "voxel_mm": voxel_mm, "seed": 7919,
        "subjects": ids, "enhancing": ids[:enhancing]}))
    return folder


def test_a_test_set_of_another_voxel_size_or_too_small_is_refused(tmp_path):
    folder = _fake_test_set(tmp_path / "set3mm", voxel_mm=3.0)
    with pytest.raises(bq.BenchmarkError, match="generated at 3 mm.*trains at 4 mm"):
        bq.test_set(tmp_path, 40, 7919, 4.0, explicit=str(folder))
    small = _fake_test_set(tmp_path / "small", enhancing=20)
    with pytest.raises(bq.BenchmarkError, match="20 with an enhancing part"):
        bq.test_set(tmp_path, 40, 7919, 4.0, explicit=str(small))
    data, about = bq.test_set(tmp_path, 40, 7919, 4.0,
                              explicit=str(_fake_test_set(tmp_path / "ok")))
    assert data == tmp_path / "ok" / "data" and len(about["subjects"]) == 40


def _rows(subjects, et_with_t1c, et_without, wt=0.9):
    rows = []
    for subject in subjects:
        for code in SUBSET_CODES:
            et = et_with_t1c if "T1c" in code.split("+") else et_without
            for region, dice in (("whole_tumour", wt), ("tumour_core", 0.7),
                                 ("enhancing", et)):
                for metric in ("dice", "lesion_dice"):
                    rows.append({"subject": subject, "subset": code, "target": region,
                                 "metric": metric, "value": dice})
    return rows


def test_figures_of_one_run():
    about = {"subjects": ["A", "B"], "enhancing": ["A"]}
    figures = bq.seed_figures(_rows(["A", "B"], 0.9, 0.1), about)
    assert figures["wt_all4"] == [0.9, 0.9]
    assert figures["et_all4"] == [0.9]                          # subjects with ET only
    assert figures["et_gap"] == [pytest.approx(0.8)]
    # 8 subsets with T1c, 7 without: (8 * 0.9 + 7 * 0.1) / 15
    assert figures["et_15"] == [pytest.approx((8 * 0.9 + 7 * 0.1) / 15)]
    with pytest.raises(bq.BenchmarkError, match="incomplete"):
        bq.seed_figures(_rows(["A"], 0.9, 0.1), about)


def _fake_evaluation(args):
    """What evaluate would leave: results.csv of two subjects in --out_dir."""
    from pathlib import Path
    from hved_tf.evaluation.tables import write_csv
    out = Path(next(a.split("=", 1)[1] for a in args if a.startswith("--out_dir")))
    out.mkdir(parents=True)
    write_csv(out / "results.csv", [{"model": "u_hved", **r}
                                    for r in _rows(["A", "B"], 0.8, 0.2)])


def test_an_interrupted_seed_resumes_without_retraining(tmp_path, monkeypatch):
    about = {"subjects": ["A", "B"], "enhancing": ["A"]}
    calls = []

    def fake_call(args, log_path):
        calls.append(args[0])
        run_dir = next(a.split("=", 1)[1] for a in args if a.startswith(("--run_dir",
                                                                          "--model")))
        if args[0] == "hved_tf.train":
            (tmp_path / "r").mkdir(exist_ok=True)
            from pathlib import Path
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            (Path(run_dir) / "model.weights.h5").write_text("w")
            return 5.0
        if calls.count("hved_tf.evaluate") == 1:
            raise KeyboardInterrupt                              # killed while evaluating
        _fake_evaluation(args)
        return 2.0

    monkeypatch.setattr(bq, "_call", fake_call)
    recipe = bq.recipe_record(DEMO, [], [])
    with pytest.raises(KeyboardInterrupt):
        bq.run_seed(0, recipe, tmp_path / "demo", tmp_path, tmp_path / "data", about)
    result = bq.run_seed(0, recipe, tmp_path / "demo", tmp_path, tmp_path / "data", about)
    assert calls == ["hved_tf.train", "hved_tf.evaluate", "hved_tf.evaluate"]
    assert result["train_s"] == 5.0 and result["evaluate_s"] == 2.0
    assert result["figures"]["et_gap"] == [pytest.approx(0.6)]
    assert bq.run_seed(0, recipe, tmp_path / "demo", tmp_path, tmp_path / "data",
                       about) == result                            # finished: reused
    assert len(calls) == 3


def test_an_evaluation_variant_scores_another_recipes_runs(tmp_path, monkeypatch):
    about = {"subjects": ["A", "B"], "enhancing": ["A"]}
    source = tmp_path / "recipes" / "demo" / "seed0"
    source.mkdir(parents=True)
    bq.check_record(source, bq.recipe_record(DEMO, [], []))
    (source / "run").mkdir()
    (source / "run" / "model.weights.h5").write_text("w")
    (source / "timing.json").write_text(json.dumps({"train_s": 600.0}))
    evaluated = []

    def fake_call(args, log_path):
        assert args[0] == "hved_tf.evaluate", "an evaluation variant must not train"
        evaluated.append(args)
        _fake_evaluation(args)
        return 1.0

    monkeypatch.setattr(bq, "_call", fake_call)
    variant = bq.recipe_record(DEMO, [], ["noprior_correction"], train_from="demo")
    result = bq.run_seed(0, variant, tmp_path / "recipes" / "demo_noprior", tmp_path,
                         tmp_path / "data", about)
    assert f"--model={source / 'run'}" in evaluated[0] and "--noprior_correction" in evaluated[0]
    assert result["train_s"] == 600.0
    other = bq.recipe_record(DEMO, ["steps=10"], ["noprior_correction"], train_from="demo")
    with pytest.raises(bq.BenchmarkError, match="--steps"):
        bq.run_seed(0, other, tmp_path / "recipes" / "other", tmp_path, tmp_path / "data", about)


def test_the_record_holds_the_recipes_config_and_its_seeds(tmp_path, monkeypatch):
    import hved_tf.training.quality_record as quality_record
    monkeypatch.setattr(quality_record, "RECORD", tmp_path / "record.json")
    recipe = bq.recipe_record(DEMO, ["steps=10"], [])
    results = [{"seed": s, "figures": {"wt_all4": [0.8, 0.9], "et_gap": [0.5]}}
               for s in (0, 1)]
    bq.write_record("demo", recipe, {"subjects": ["A", "B"]}, results, tmp_path / "demo.md")
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["seeds"] == [0, 1] and record["figures"]["wt_all4"] == [
        pytest.approx(0.85)] * 2
    assert record["config"]["steps"] == 10 and "run_dir" not in record["config"]
    with pytest.raises(bq.BenchmarkError, match="--record"):
        bq.write_record("v", bq.recipe_record(DEMO, [], ["noprior_correction"]),
                        {"subjects": ["A"]}, results, tmp_path / "v.md")
