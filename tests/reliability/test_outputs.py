"""Fault matrix, outputs: an output that cannot be written (a file in the way, a read-only or
pseudo file system, a full disk) ends in one line naming the path, before the long work where it
can be known before; a set is written whole or not at all; `--overwrite` replaces a set whole;
what killed runs left is removed by the next run."""
import os
import pathlib

import pytest

from faults import (FAST, case_files, cli, fill_disk, modality_flags, partials,  # noqa: F401
                    refused, tmpfs, whole_or_nothing)
from hved_tf.io.atomic import PARTIAL_PREFIX

PREDICT_SET = ["seg.nii.gz", "report.json", "uncertainty.nii.gz"]


def _dead_pid():
    """The id of a process that is not running."""
    pid = 2 ** 22 - 7
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid -= 1


def _predict(cli, tiny_run, case_files, out, *extra):
    return cli("predict", f"--model={tiny_run}", f"--out_dir={out}", *FAST,
               *modality_flags(case_files), *extra)


def _evaluate(cli, tiny_run, labelled, out, *extra):
    root, cache = labelled
    return cli("evaluate", f"--model={tiny_run}", f"--data_root={root}", "--subsets=T1c",
               f"--out_dir={out}", f"--cache_dir={cache}", *FAST, *extra)


def _export(cli, tiny_run, export_dir, *extra):
    return cli("export", f"--model={tiny_run}", f"--export_dir={export_dir}", "--samples=1",
               *extra)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    from hved_tf.data.synthetic import write_phantom_dataset
    root = tmp_path_factory.mktemp("labelled")
    write_phantom_dataset(root / "data", 1, (32, 32, 32), seed=5)
    return root / "data", root / "cache"


# ------------------------------------------------------------------ a file in the way
def test_predict_out_dir_that_is_a_file(tmp_path, cli, tiny_run, case_files):
    (tmp_path / "out").write_text("x")
    refused(_predict(cli, tiny_run, case_files, tmp_path / "out"), 2, tmp_path / "out",
            "is a file")


def test_predict_out_dir_under_a_file(tmp_path, cli, tiny_run, case_files):
    (tmp_path / "f").write_text("x")
    refused(_predict(cli, tiny_run, case_files, tmp_path / "f" / "out"), 2, tmp_path / "f",
            "not a folder")
    assert (tmp_path / "f").read_text() == "x"


def test_predict_out_dir_on_a_pseudo_file_system(cli, tiny_run, case_files):
    refused(_predict(cli, tiny_run, case_files, "/proc/hved_out"), 2, "/proc")


def test_evaluate_out_dir_that_is_a_file(tmp_path, cli, tiny_run, labelled):
    (tmp_path / "eval").write_text("x")
    refused(_evaluate(cli, tiny_run, labelled, tmp_path / "eval"), 2, tmp_path / "eval",
            "is a file")


def test_export_dir_that_is_a_file(tmp_path, cli, tiny_run):
    (tmp_path / "models").write_text("x")
    refused(_export(cli, tiny_run, tmp_path / "models"), 2, tmp_path / "models")


def test_train_run_dir_that_is_a_file(tmp_path, cli):
    (tmp_path / "run").write_text("x")
    refused(cli("train", "--data_root=demo", f"--run_dir={tmp_path / 'run'}", "--steps=2"), 2,
            tmp_path / "run", "is a file")


# ------------------------------------------------------------------ read-only file systems
def test_predict_into_a_read_only_folder_is_refused_before_inference(cli, tiny_run, case_files,
                                                                     tmpfs, monkeypatch):
    disk = tmpfs(readonly=True)
    from hved_tf.inference import segmenter
    monkeypatch.setattr(segmenter.KerasSegmenter, "segment_raw",
                        lambda *a, **k: pytest.fail("inference ran before the check"))
    refused(_predict(cli, tiny_run, case_files, disk / "out"), 2, disk, "Read-only")


def test_evaluate_into_a_read_only_folder(cli, tiny_run, labelled, tmpfs):
    disk = tmpfs(readonly=True)
    refused(_evaluate(cli, tiny_run, labelled, disk / "eval"), 2, disk, "Read-only")


def test_export_into_a_read_only_folder(cli, tiny_run, tmpfs):
    disk = tmpfs(readonly=True)
    refused(_export(cli, tiny_run, disk / "models"), 2, disk, "Read-only")


def test_train_into_a_read_only_folder(cli, tmpfs):
    disk = tmpfs(readonly=True)
    refused(cli("train", "--data_root=demo", f"--run_dir={disk / 'run'}", "--steps=2"), 2,
            disk, "Read-only")


def test_train_with_its_cache_on_a_read_only_folder(tmp_path, cli, tmpfs):
    disk = tmpfs(readonly=True)
    outcome = cli("train", "--data_root=demo", "--demo_subjects=5", "--demo_shape=32,32,32",
                  "--patch=32,32,32", f"--run_dir={tmp_path / 'run'}", "--steps=2",
                  f"--cache_dir={disk / 'cache'}")
    refused(outcome, 2, disk, "Read-only")


# ------------------------------------------------------------------ full disks
def test_predict_on_a_full_disk_is_refused_before_inference(cli, tiny_run, case_files, tmpfs):
    disk = tmpfs("64k")
    line = refused(_predict(cli, tiny_run, case_files, disk / "out"), 2, disk, "MB free")
    assert "needed" in line
    whole_or_nothing(disk / "out", [])


def test_predict_when_the_disk_fills_while_writing(cli, tiny_run, case_files, tmpfs,
                                                   monkeypatch):
    """The free-space estimate passed but the disk filled meanwhile: still one line and no
    part of the set."""
    from hved_tf.prediction import app
    disk = tmpfs("1m")
    monkeypatch.setattr(app, "check_writable", lambda *a, **k: None)
    original = app.atomic_directory

    def full_meanwhile(target, replace=False):
        fill_disk(disk, leave=20_000)
        return original(target, replace)
    monkeypatch.setattr(app, "atomic_directory", full_meanwhile)
    line = refused(_predict(cli, tiny_run, case_files, disk / "out"), 2, disk / "out")
    assert "No space left on device" in line
    whole_or_nothing(disk / "out", [])


def test_evaluate_on_a_full_disk_writes_nothing(cli, tiny_run, labelled, tmpfs, monkeypatch):
    from hved_tf.evaluation import app
    disk = tmpfs("1m")
    original = app.evaluate

    def evaluate_then_fill(*args, **kwargs):
        rows = original(*args, **kwargs)
        fill_disk(disk, leave=200)
        return rows
    monkeypatch.setattr(app, "evaluate", evaluate_then_fill)
    line = refused(_evaluate(cli, tiny_run, labelled, disk / "eval"), 2, disk / "eval")
    assert "No space left on device" in line
    whole_or_nothing(disk / "eval", [])
    assert not (disk / "eval").exists()


def test_export_on_a_full_disk_leaves_no_version_folder(cli, tiny_run, tmpfs):
    disk = tmpfs("2m")
    line = refused(_export(cli, tiny_run, disk / "models"), 2, disk)
    assert "space" in line
    assert not (disk / "models").exists() or not list((disk / "models").iterdir())
    assert not partials(disk)


def test_export_when_the_disk_fills_while_writing(cli, tiny_run, tmpfs, monkeypatch):
    """TensorFlow's own file errors (not OSError) while the SavedModel is written."""
    from hved_tf.serving import export
    disk = tmpfs("1m")
    monkeypatch.setattr(export, "check_writable", lambda *a, **k: None)
    line = refused(_export(cli, tiny_run, disk / "models"), 2, disk / "models" / "1")
    assert "No space left on device" in line
    assert not partials(disk) and not (disk / "models" / "1").exists()


# ------------------------------------------------------------------ whole sets
def test_overwrite_replaces_the_whole_set(tmp_path, cli, tiny_run, case_files):
    out = tmp_path / "out"
    first = _predict(cli, tiny_run, case_files, out, "--probabilities", "--synth_all")
    assert first.code == 0, first
    assert list(out.glob("prob_*")) and list(out.glob("synth_*"))
    second = _predict(cli, tiny_run, case_files, out, "--overwrite")
    assert second.code == 0, second
    assert not list(out.glob("prob_*")) and not list(out.glob("synth_*"))
    whole_or_nothing(out, PREDICT_SET)


def test_leftovers_of_a_killed_predict_are_removed_by_the_next_run(tmp_path, cli, tiny_run,
                                                                   case_files):
    pid = _dead_pid()
    out = tmp_path / "out"
    tmp_path.joinpath(f"{PARTIAL_PREFIX}{pid}-abc123.out").mkdir()
    (tmp_path / f"{PARTIAL_PREFIX}{pid}-abc123.out" / "seg.nii.gz").write_bytes(b"half")
    done = _predict(cli, tiny_run, case_files, out)
    assert done.code == 0, done
    whole_or_nothing(out, PREDICT_SET)


def test_a_folder_holding_other_files_is_refused(tmp_path, cli, tiny_run, case_files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused(_predict(cli, tiny_run, case_files, out), 2, out, "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"


def test_earlier_results_are_refused_without_overwrite(tmp_path, cli, tiny_run, case_files):
    out = tmp_path / "out"
    assert _predict(cli, tiny_run, case_files, out).code == 0
    refused(_predict(cli, tiny_run, case_files, out), 2, out, "--overwrite")
    whole_or_nothing(out, PREDICT_SET)


def test_leftovers_of_a_killed_export_are_removed_by_the_next_export(tmp_path, cli, tiny_run):
    models = tmp_path / "models"
    models.mkdir()
    pid = _dead_pid()
    (models / f"{PARTIAL_PREFIX}{pid}-abc123.1").mkdir()
    (models / f"{PARTIAL_PREFIX}{pid}-abc123.1" / "saved_model.pb").write_bytes(b"half")
    done = _export(cli, tiny_run, models)
    assert done.code == 0, done
    assert sorted(p.name for p in models.iterdir()) == ["1"]


def test_an_existing_export_version_is_refused(tmp_path, cli, tiny_run):
    models = tmp_path / "models"
    (models / "1").mkdir(parents=True)
    refused(_export(cli, tiny_run, models, "--version=1"), 2, models / "1", "--version")


def test_evaluate_overwrite_replaces_the_set(tmp_path, cli, tiny_run, labelled):
    out = tmp_path / "eval"
    first = _evaluate(cli, tiny_run, labelled, out, "--figures=1",
                      "--subsets=T1c,T1+T1c+T2+FLAIR")
    assert first.code == 0, first
    assert (out / "figures").is_dir()
    again = _evaluate(cli, tiny_run, labelled, out, "--overwrite")
    assert again.code == 0, again
    whole_or_nothing(out, ["results.csv", "summary.json", "table1.md", "table1.png",
                           "synthesis.md"])  # the tiny run is a U-HVED: it synthesises


def test_a_stray_partial_of_a_live_process_is_kept(tmp_path, cli, tiny_run, case_files):
    """Another running writer's temporary folder is not ours to remove."""
    live = tmp_path / f"{PARTIAL_PREFIX}{os.getppid()}-abc123.other"
    live.mkdir()
    assert _predict(cli, tiny_run, case_files, tmp_path / "out").code == 0
    assert live.is_dir()
    pathlib.Path(live).rmdir()
