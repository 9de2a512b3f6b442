"""hved_tf.evaluate end to end on two phantoms with a tiny (untrained) model, twice."""
import json

import numpy as np

from hved_tf.evaluation import tables
from hved_tf.data.synthetic import write_phantom_dataset
from hved_tf.modalities import SUBSET_CODES


def test_evaluate_writes_table_csv_summary_and_figures(tmp_path, tiny_run, cli):
    """In this process (hved-evaluate as a real process: tests/test_cli.py)."""
    write_phantom_dataset(tmp_path / "data", 2, (32, 32, 32), seed=5)
    out = tmp_path / "eval"
    args = [f"--model={tiny_run}", f"--model={tiny_run}", f"--data_root={tmp_path / 'data'}",
            f"--out_dir={out}", "--samples=2", "--figures=1", "--overlap=0"]
    done = cli("evaluate", *args)
    assert done.code == 0, done
    rows = tables.read_csv(out / "results.csv")
    names = sorted({r["model"] for r in rows})
    assert len(names) == 2
    assert {r["subset"] for r in rows} == set(SUBSET_CODES)
    assert {r["metric"] for r in rows} == {"dice", "hd95", "sensitivity", "specificity",
                                           "lesion_dice", "lesion_hd95", "psnr", "ssim",
                                           "brasyn_ssim_tumour", "brasyn_ssim_healthy",
                                           "brasyn_mse", "brasyn_psnr"}
    # PSNR/SSIM only for modalities the subset leaves out: 4 * 15 - 32 present = 28 per subject.
    assert sum(r["metric"] == "ssim" for r in rows) == 2 * 2 * 28
    lines = [ln for ln in (out / "table1.md").read_text().splitlines() if ln.startswith("|")]
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert len(body) == 16
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    for k, column in enumerate(head[4:]):
        short, model = column.split(" ", 1)
        region = {"WT": "whole_tumour", "TC": "tumour_core", "ET": "enhancing"}[short]
        values = [r["value"] for r in rows if r["model"] == model and r["target"] == region
                  and r["metric"] == "dice"]
        assert body[-1][4 + k] == f"{100 * np.mean(values):.1f}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subjects"] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    pngs = sorted(p.name for p in (out / "figures").rglob("*.png"))
    assert len(pngs) == 2 * 2     # one subject, two figure subsets, two models
    again = cli("evaluate", *args)
    assert again.code == 2 and "--overwrite" in again.err, again


def test_evaluate_scores_at_the_model_voxel_size(tmp_path, tiny_run):
    """Phantoms at 2 mm, a 1 mm model: each subject is prepared (and scored) at 1 mm, unless
    --keep_input_spacing, where it stays at 2 mm."""
    from hved_tf.config import EvaluateConfig, GridOptions
    from hved_tf.data.synthetic import make_phantom, write_dataset
    from hved_tf.evaluation.app import evaluate
    from hved_tf.inference.loading import open_segmenter
    from hved_tf.io.datasets import discover_subjects

    write_dataset(tmp_path / "data", 1, lambda seed, values: make_phantom((32, 32, 32), seed,
                                                                           values),
                  seed=5, voxel_mm=2.0)
    subjects = discover_subjects(tmp_path / "data")
    segmenter = open_segmenter(tiny_run)
    for grid, shape in ((GridOptions(), [64, 64, 64, 4]),
                        (GridOptions(keep_input_spacing=True), [32, 32, 32, 4])):
        cache = tmp_path / f"cache_{grid.resample}"
        rows = evaluate([segmenter], ["tiny"], subjects, cache,
                        EvaluateConfig(out_dir="", subsets=("T1+T1c+T2+FLAIR",), grid=grid))
        metas = [json.loads(p.read_text()) for p in cache.rglob("meta.json")]
        assert [m["shape"] for m in metas] == [shape]
        assert {r["metric"] for r in rows} >= {"dice", "hd95"}
