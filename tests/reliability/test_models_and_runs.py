"""Fault matrix, models, run folders and caches: a damaged resume backup falls back to the newest
readable step checkpoint (or stops with a message saying what to do); a damaged model file is
refused naming it, with no silent fallback to other weights; a run config that disagrees with
its weights names the option; a damaged cache entry is rebuilt; no subject is dropped without a
line saying so."""
import json
import logging
import shutil

import nibabel as nib
import numpy as np
import pytest

from faults import (FAST, case_files, cli, copy_of, modality_flags, refused,  # noqa: F401
                    whole_or_nothing)
from hved_tf import train
from hved_tf.data.synthetic import write_phantom_dataset
from conftest import tiny_flags

TINY = tiny_flags(scaling=0, flip_axes="")


def _truncate(path, keep=0.5):
    blob = path.read_bytes()
    path.write_bytes(blob[: int(len(blob) * keep)])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny training run of 4 steps (checkpoints at 2 and 4, a backup at 4)."""
    root = tmp_path_factory.mktemp("finished")
    code = train.PROGRAM.call([*TINY, "--steps=4", f"--run_dir={root / 'run'}",
                               f"--cache_dir={root / 'cache'}"])
    assert code == 0
    return root / "run", root / "cache"


def _resume(cli, run_dir, cache, steps=4):
    """The run's command again after a kill at its very end (after the last backup, before
    the test results): restoring its backup (or a step checkpoint) is all there is to do (a
    fallback to an older checkpoint would train again up to `steps`)."""
    (run_dir / "test_results.json").unlink(missing_ok=True)
    return cli("train", *TINY, f"--steps={steps}", f"--run_dir={run_dir}",
               f"--cache_dir={cache}")


def _warned(caplog, *parts):
    return any(all(p in r.getMessage() for p in parts) for r in caplog.records)


# ------------------------------------------------------------------ resume
def test_a_truncated_backup_resumes_from_the_newest_step_checkpoint(finished_run, copy_of, cli,
                                                                    caplog):
    run_dir = copy_of(finished_run[0])
    _truncate(run_dir / "backup" / "latest.weights.h5")
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        outcome = _resume(cli, run_dir, finished_run[1])
    assert outcome.code == 0, outcome
    assert _warned(caplog, "resume backup", "damaged", "step_00000004.weights.h5")
    assert "resuming from step 4 of 4" in outcome.out
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 4


def test_corrupt_training_metadata_resumes_from_a_step_checkpoint(finished_run, copy_of, cli,
                                                                  caplog):
    run_dir = copy_of(finished_run[0])
    (run_dir / "backup" / "training_metadata.json").write_text("{\n")
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        outcome = _resume(cli, run_dir, finished_run[1])
    assert outcome.code == 0, outcome
    assert _warned(caplog, "resume backup", "damaged")
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 4


def test_a_damaged_backup_without_any_readable_checkpoint_says_what_to_do(finished_run, copy_of,
                                                                          cli):
    run_dir = copy_of(finished_run[0])
    _truncate(run_dir / "backup" / "latest.weights.h5")
    for path in (run_dir / "checkpoints").glob("*.weights.h5"):
        _truncate(path)
    line = refused(_resume(cli, run_dir, finished_run[1]), 2, run_dir / "backup",
                   "no readable step checkpoint", "step_00000004.weights.h5")
    assert "Remove" in line


def test_an_unreadable_best_score_warns_and_training_goes_on(finished_run, copy_of, cli,
                                                             caplog):
    run_dir = copy_of(finished_run[0])
    best = next(p for p in run_dir.iterdir() if p.name.startswith("best.") and
                p.suffix in (".txt", ".json"))
    best.write_text("")
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        outcome = _resume(cli, run_dir, finished_run[1])
    assert outcome.code == 0, outcome
    assert _warned(caplog, best.name, "unreadable")


# ------------------------------------------------------------------ damaged model files
@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, tiny_run):
    from hved_tf.inference.loading import load_trained
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    load_trained(tiny_run).model.save(path)
    shutil.copy(tiny_run / "hist.txt", path.parent / "hist.txt")
    return path


def _with_damaged_best(copy_of, tiny_run):
    run_dir = copy_of(tiny_run)
    shutil.copy(run_dir / "model.weights.h5", run_dir / "best.weights.h5")
    _truncate(run_dir / "best.weights.h5")
    return run_dir, run_dir / "best.weights.h5"


@pytest.mark.parametrize("program", ["predict", "evaluate", "export"])
def test_a_truncated_best_weights_file_is_named_not_replaced(tmp_path, copy_of, cli, tiny_run,
                                                             case_files, program):
    run_dir, best = _with_damaged_best(copy_of, tiny_run)
    outcome = _run_model(cli, program, run_dir, tmp_path, case_files)
    refused(outcome, 2, best, "damaged")
    whole_or_nothing(tmp_path / "out", [])


@pytest.mark.parametrize("program", ["predict", "evaluate", "export"])
def test_a_truncated_keras_file_is_named(tmp_path, cli, keras_file, case_files, program):
    damaged = tmp_path / "k" / "model.keras"
    damaged.parent.mkdir()
    shutil.copy(keras_file, damaged)
    shutil.copy(keras_file.parent / "hist.txt", damaged.parent / "hist.txt")
    _truncate(damaged)
    refused(_run_model(cli, program, damaged, tmp_path, case_files), 2, damaged)
    whole_or_nothing(tmp_path / "out", [])


def _run_model(cli, program, model, tmp_path, case_files):
    if program == "predict":
        return cli("predict", f"--model={model}", f"--out_dir={tmp_path / 'out'}", *FAST,
                   *modality_flags(case_files))
    if program == "evaluate":
        data = tmp_path / "data"
        if not data.exists():
            write_phantom_dataset(data, 1, (32, 32, 32), seed=5)
        return cli("evaluate", f"--model={model}", f"--data_root={data}", "--subsets=T1c",
                   f"--out_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}", *FAST)
    return cli("export", f"--model={model}", f"--export_dir={tmp_path / 'out'}", "--samples=1")


@pytest.mark.parametrize("option,value", [("base_filters", 8), ("levels", 4)])
def test_a_run_config_that_disagrees_with_its_weights_names_the_option(tmp_path, copy_of, cli,
                                                                       tiny_run, case_files,
                                                                       option, value):
    run_dir = copy_of(tiny_run)
    config = json.loads((run_dir / "run_config.json").read_text())
    stored = config["model"][option]
    config["model"][option] = value
    (run_dir / "run_config.json").write_text(json.dumps(config))
    line = refused(_run_model(cli, "predict", run_dir, tmp_path, case_files), 2,
                   f"--{option}", f"says {value}", f"weights {stored}")
    assert len(line) < 400, line


def test_a_corrupt_run_config_is_named(tmp_path, copy_of, cli, tiny_run, case_files):
    run_dir = copy_of(tiny_run)
    (run_dir / "run_config.json").write_text('{"model": ')
    refused(_run_model(cli, "predict", run_dir, tmp_path, case_files), 2,
            run_dir / "run_config.json", "not a readable run config")


def test_a_plain_weights_file_as_model_is_refused(tmp_path, cli, tiny_run, case_files):
    refused(_run_model(cli, "predict", tiny_run / "model.weights.h5", tmp_path, case_files), 2,
            "model.weights.h5", ".keras")


def test_an_export_we_did_not_write_is_refused(tmp_path, copy_of, cli, tiny_export, case_files):
    export = copy_of(tiny_export, "foreign")
    (export / "assets" / "hved_export.json").unlink()
    refused(_run_model(cli, "predict", export, tmp_path, case_files), 2, export,
            "hved_export.json")


def test_a_damaged_export_is_named(tmp_path, copy_of, cli, tiny_export, case_files):
    export = copy_of(tiny_export, "damaged")
    _truncate(export / "saved_model.pb")
    refused(_run_model(cli, "predict", export, tmp_path, case_files), 2, export)
    whole_or_nothing(tmp_path / "out", [])


# ------------------------------------------------------------------ caches and subjects
def test_a_damaged_cache_entry_is_rebuilt_not_dropped(tmp_path, cli, tiny_run, caplog):
    data = tmp_path / "data"
    write_phantom_dataset(data, 2, (32, 32, 32), seed=5)
    args = [f"--model={tiny_run}", f"--data_root={data}", "--subsets=T1c",
            f"--cache_dir={tmp_path / 'cache'}", *FAST]
    first = cli("evaluate", *args, f"--out_dir={tmp_path / 'e1'}")
    assert first.code == 0, first
    image = sorted((tmp_path / "cache").rglob("image.npy"))[0]
    _truncate(image)
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        second = cli("evaluate", *args, f"--out_dir={tmp_path / 'e2'}")
    assert second.code == 0, second
    assert _warned(caplog, "cache entry", str(image.parent), "damaged")
    one = json.loads((tmp_path / "e1" / "summary.json").read_text())
    two = json.loads((tmp_path / "e2" / "summary.json").read_text())
    assert one["subjects"] == two["subjects"] and len(two["subjects"]) == 2
    assert (tmp_path / "e1" / "results.csv").read_text() == \
        (tmp_path / "e2" / "results.csv").read_text()


def _damage_one_subject(root):
    t1 = sorted(root.rglob("*_t1.nii.gz"))[1]
    t1.write_bytes(t1.read_bytes()[:200])
    return t1


def test_predict_over_a_dataset_goes_past_a_bad_subject_and_exits_non_zero(tmp_path, cli,
                                                                           tiny_run):
    data = tmp_path / "data"
    write_phantom_dataset(data, 3, (32, 32, 32), seed=5)
    bad = _damage_one_subject(data)
    bad_id = bad.parent.name
    outcome = cli("predict", f"--model={tiny_run}", f"--data_root={data}",
                  f"--out_dir={tmp_path / 'out'}", *FAST)
    line = refused(outcome, 2, "1 of 3 subjects failed", bad_id, bad.name)
    assert "Traceback" not in line
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 2 and bad_id not in written
    for name in written:
        whole_or_nothing(tmp_path / "out" / name, None)
        assert (tmp_path / "out" / name / "report.json").is_file()


def test_skip_holds_while_landmarks_are_trained_and_the_run_lists_the_skipped(tmp_path, cli):
    data = tmp_path / "data"
    write_phantom_dataset(data, 6, (32, 32, 32), seed=5)
    bad = _damage_one_subject(data)
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("--data_root", "--demo_"))]
    outcome = cli("train", *args, f"--data_root={data}", "--steps=2", f"--run_dir={run_dir}",
                  "--on_bad_subject=skip", "--folds=2")
    assert outcome.code == 0, outcome
    skipped = json.loads((run_dir / "skipped_subjects.json").read_text())
    assert [s["id"] for s in skipped] == [bad.parent.name]
    assert bad.name in skipped[0]["reason"]
    assert f"skipped 1 subject(s)" in outcome.out and bad.parent.name in outcome.out


def test_fail_stops_at_the_bad_subject_naming_it(tmp_path, cli):
    data = tmp_path / "data"
    write_phantom_dataset(data, 6, (32, 32, 32), seed=5)
    bad = _damage_one_subject(data)
    args = [a for a in TINY if not a.startswith(("--data_root", "--demo_"))]
    refused(cli("train", *args, f"--data_root={data}", "--steps=2",
                f"--run_dir={tmp_path / 'run'}", "--on_bad_subject=fail", "--folds=2"), 2,
            bad.name)


def test_a_patch_too_small_for_the_network_is_refused_before_preparation(tmp_path, cli):
    run_dir = tmp_path / "run"
    line = refused(cli("train", "--data_root=demo", "--patch=12,12,12", "--levels=4",
                       f"--run_dir={run_dir}", f"--cache_dir={tmp_path / 'cache'}"), 2,
                   "--patch", "8")
    assert not run_dir.exists() and not (tmp_path / "cache").exists(), line


def test_a_run_folder_of_another_model_is_refused(finished_run, copy_of, cli):
    run_dir = copy_of(finished_run[0])
    args = [a for a in TINY if not a.startswith("--base_filters")]
    refused(cli("train", *args, "--base_filters=6", "--steps=6", f"--run_dir={run_dir}",
                f"--cache_dir={finished_run[1]}"), 2, "base_filters=4", "base_filters=6",
            "--run_dir")


def test_an_rgb_label_file_is_refused_naming_it(tmp_path, cli, tiny_run):
    """evaluate refuses a subject whose truth is unusable, naming the file."""
    data = tmp_path / "data"
    write_phantom_dataset(data, 1, (32, 32, 32), seed=5)
    label = next(data.rglob("*seg.nii.gz"))
    img = nib.load(str(label))
    rgb = np.zeros(img.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, img.affine), str(label))
    refused(cli("evaluate", f"--model={tiny_run}", f"--data_root={data}", "--subsets=T1c",
                f"--out_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}", *FAST),
            2, label.name, "colour")
