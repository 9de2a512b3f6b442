"""`evaluate --predictions DIR`: segmentation files of any tool scored like a model's, and its bad
inputs refused before any scoring (missing files, another grid, unknown label values)."""
import logging

import nibabel as nib
import numpy as np
import pytest

from faults import FAST, cli, refused, whole_or_nothing  # noqa: F401  (cli: a fixture)
from hved_tf.evaluation import tables

ALL_FOUR = "T1+T1c+T2+FLAIR"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from hved_tf.data.synthetic import write_phantom_dataset
    root = tmp_path_factory.mktemp("on_disk")
    write_phantom_dataset(root / "data", 2, (32, 32, 32), seed=11)
    return root / "data", root / "cache"


def _label_files(root):
    return sorted(root.rglob("*seg.nii.gz"))


def _copy_truth_as_predictions(root, folder, convert=None):
    """Each subject's label file written as <id>.nii.gz (optionally with its values changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in _label_files(root):
        img = nib.load(path)
        data = np.asanyarray(img.dataobj).astype(np.int16)
        data = convert(data) if convert else data
        nib.save(nib.Nifti1Image(data, img.affine), folder / f"{path.parent.name}.nii.gz")
    return folder


def _evaluate(cli, root, cache, out, *extra):
    return cli("evaluate", f"--data_root={root}", f"--cache_dir={cache}", f"--out_dir={out}",
               "--lesion_protocol=none", *extra)


def test_predictions_of_predict_score_the_same_voxel_dice_as_the_model(tmp_path, cli,
                                                                        tiny_run, dataset):
    root, cache = dataset
    written = cli("predict", f"--model={tiny_run}", f"--data_root={root}",
                  f"--out_dir={tmp_path / 'pred'}", *FAST)
    assert written.code == 0, written
    by_model = _evaluate(cli, root, cache, tmp_path / "model", f"--model={tiny_run}",
                         f"--subsets={ALL_FOUR}", *FAST)
    assert by_model.code == 0, by_model
    by_files = _evaluate(cli, root, cache, tmp_path / "files",
                         f"--predictions={tmp_path / 'pred'}", "--predictions_name=files")
    assert by_files.code == 0, by_files
    dice = {}
    for name, out in (("model", tmp_path / "model"), ("files", tmp_path / "files")):
        dice[name] = {(r["subject"], r["target"]): r["value"]
                      for r in tables.read_csv(out / "results.csv") if r["metric"] == "dice"}
    assert len(dice["model"]) == 2 * 3
    assert dice["files"] == pytest.approx(dice["model"], abs=1e-12)
    # Not a trivial agreement: the untrained model's labels overlap the truth only in part.
    assert any(0.0 < v < 1.0 for v in dice["model"].values())
    whole_or_nothing(tmp_path / "files", ["results.csv", "summary.json", "table1.md",
                                          "table1.png"])


def test_the_truth_itself_scores_one_in_either_convention(tmp_path, cli, dataset):
    root, cache = dataset
    # The phantoms are labelled 0/1/2/4; written in BraTS 2023's 0/1/2/3 they mean the same.
    folder = _copy_truth_as_predictions(root, tmp_path / "p2023",
                                        lambda d: np.where(d == 4, 3, d))
    done = _evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}")
    assert done.code == 0, done
    rows = tables.read_csv(tmp_path / "out" / "results.csv")
    assert {r["subset"] for r in rows} == {ALL_FOUR}
    values = [r["value"] for r in rows if r["metric"] == "dice"]
    assert len(values) == 6 and all(v == 1.0 for v in values)
    hd = [r["value"] for r in rows if r["metric"] == "hd95"]
    assert all(v == 0.0 for v in hd)


def test_missing_predictions_are_listed_and_refused_unless_missing_as_empty(tmp_path, cli,
                                                                            dataset, caplog):
    root, cache = dataset
    folder = _copy_truth_as_predictions(root, tmp_path / "p")
    gone = sorted(folder.iterdir())[0]
    gone.unlink()
    subject = gone.name.replace(".nii.gz", "")
    line = refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}"),
                   2, subject, "1 of 2", "--missing_as_empty")
    assert "seg.nii.gz" in line
    whole_or_nothing(tmp_path / "out")
    logger = logging.getLogger("hved_tf")      # may not propagate (the CLIs' own logging)
    logger.addHandler(caplog.handler)
    try:
        done = _evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}",
                         "--missing_as_empty")
    finally:
        logger.removeHandler(caplog.handler)
    assert done.code == 0, done
    assert "scored as empty" in caplog.text          # a warning (stderr in a real run)
    rows = tables.read_csv(tmp_path / "out" / "results.csv")
    dice = {r["subject"]: r["value"] for r in rows
            if r["metric"] == "dice" and r["target"] == "whole_tumour"}
    assert dice[subject] == 0.0 and set(dice.values()) == {0.0, 1.0}


def test_a_prediction_on_another_grid_is_refused(tmp_path, cli, dataset):
    root, cache = dataset
    folder = _copy_truth_as_predictions(root, tmp_path / "p")
    victim = sorted(folder.iterdir())[1]
    img = nib.load(victim)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, :30], img.affine), victim)
    refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}"), 2,
            victim, "another grid", "resample")
    whole_or_nothing(tmp_path / "out")
    shifted = np.asanyarray(nib.load(sorted(folder.iterdir())[0]).dataobj)
    affine = np.eye(4)
    affine[0, 3] = 5.0
    nib.save(nib.Nifti1Image(shifted, affine), victim)
    refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}"), 2,
            victim, "another grid")


def test_unknown_label_values_are_refused(tmp_path, cli, dataset):
    root, cache = dataset
    folder = _copy_truth_as_predictions(root, tmp_path / "p", lambda d: np.where(d == 2, 7, d))
    refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}"), 2,
            "label values", "7", "--predictions_convention")
    mixed = _copy_truth_as_predictions(root, tmp_path / "q")
    victim = sorted(mixed.iterdir())[0]
    img = nib.load(victim)
    data = np.asanyarray(img.dataobj).astype(np.int16)
    data[0, 0, 0] = 3                              # 3 and 4 in one file: no convention has both
    nib.save(nib.Nifti1Image(data, img.affine), victim)
    refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={mixed}"), 2,
            victim, "fit no known convention")
    refused(_evaluate(cli, root, cache, tmp_path / "out", f"--predictions={folder}",
                      "--predictions_convention=brats2018"), 2, "brats2018", "[7]")


def test_predictions_need_the_truth(tmp_path, cli):
    refused(cli("evaluate", f"--predictions={tmp_path}", f"--out_dir={tmp_path / 'o'}"), 2,
            "--data_root")
    refused(cli("evaluate", f"--out_dir={tmp_path / 'o'}"), 2, "--model", "--predictions")


def test_brats2025_scores_reach_the_summary_and_the_table(tmp_path, cli, dataset):
    """--protocol brats2025: the instance-wise scores in results.csv and summary.json, the
    detection F1 in table1.md (the truth scored against itself: every one is perfect)."""
    pytest.importorskip("panoptica", reason="panoptica is not installed (the [brats] extra)")
    import json

    root, cache = dataset
    folder = _copy_truth_as_predictions(root, tmp_path / "truth")
    done = cli("evaluate", f"--data_root={root}", f"--cache_dir={cache}",
               f"--out_dir={tmp_path / 'out'}", f"--predictions={folder}",
               "--protocol=brats2025")
    assert done.code == 0, done
    rows = tables.read_csv(tmp_path / "out" / "results.csv")
    f1 = [r["value"] for r in rows if r["metric"] == "detection_f1"]
    assert len(f1) == 2 * 3 and all(v == 1.0 for v in f1)
    assert all(r["value"] == 0 for r in rows if r["metric"] in ("fp", "fn"))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "pq" in json.dumps(summary) and "detection_f1" in json.dumps(summary)
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "detection F1" in table and "lesion-wise Dice" in table
