"""Table-1 Markdown, CSV round trip and significance marks, on hand-made rows."""
import numpy as np
import pytest

from hved_tf.evaluation import tables
from hved_tf.modalities import SUBSET_CODES


def make_rows(models, rng, offset):
    rows = []
    for code in SUBSET_CODES:
        for s in range(10):
            for m, model in enumerate(models):
                for region in ("whole_tumour", "tumour_core", "enhancing"):
                    value = float(np.clip(0.5 + offset[m] + 0.05 * rng.normal(), 0, 1))
                    rows.append({"model": model, "subject": f"s{s}", "subset": code,
                                 "target": region, "metric": "dice", "value": value})
    return rows


def parse_table(markdown):
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return head, body


def test_table_has_15_rows_and_means_equal_csv_column_means(tmp_path):
    rng = np.random.default_rng(0)
    rows = make_rows(["a", "b"], rng, offset=[0.3, 0.0])
    tables.write_csv(tmp_path / "r.csv", rows)
    back = tables.read_csv(tmp_path / "r.csv")
    assert back == rows
    head, body = parse_table(tables.table1_markdown(back, ["a", "b"]))
    assert head[:4] == ["T1", "T1c", "T2", "FLAIR"] and head[4:6] == ["WT a", "WT b"]
    assert len(body) == 16 and body[-1][0] == "**Means**"
    assert body[0][:4] == ["●", "○", "○", "○"] and body[14][:4] == ["●"] * 4
    for col, (region, model) in enumerate(
            [(r, m) for r in ("whole_tumour", "tumour_core", "enhancing") for m in "ab"]):
        values = [r["value"] for r in back if r["model"] == model and r["target"] == region]
        assert body[-1][4 + col] == f"{100 * np.mean(values):.1f}"
    # "a" is 0.3 better on 10 paired subjects: every one of its cells is marked, b's never.
    assert all(row[4].endswith("*") and not row[5].endswith("*") for row in body[:-1])


def test_no_marks_between_equal_models_and_one_model_has_none():
    rng = np.random.default_rng(1)
    rows = make_rows(["a"], rng, offset=[0.0])
    rows += [{**r, "model": "b"} for r in rows]
    _, body = parse_table(tables.table1_markdown(rows, ["a", "b"]))
    assert not any(c.endswith("*") for row in body for c in row[4:])
    head, body = parse_table(tables.table1_markdown(rows, ["a"], subsets=["T1c", "FLAIR"]))
    assert len(head) == 4 + 3 and len(body) == 3


def test_summary_means():
    rows = [{"model": "a", "subject": s, "subset": "T1c", "target": "enhancing",
             "metric": "hd95", "value": v} for s, v in (("x", 2.0), ("y", 4.0))]
    out = tables.summary(rows, ["a"])
    assert out["a"]["T1c"]["enhancing"]["hd95"] == pytest.approx(3.0)


def test_synthesis_table_lists_each_missing_sequence_per_subset():
    rows = []
    for subject, ssim in (("a", 0.5), ("b", 0.7)):
        rows.append({"model": "m", "subject": subject, "subset": "T1c", "target": "T2",
                     "metric": "brasyn_ssim_healthy", "value": ssim})
        rows.append({"model": "m", "subject": subject, "subset": "T1c", "target": "T2",
                     "metric": "brasyn_psnr", "value": 20.0 + 10 * ssim})
    text = tables.synthesis_markdown(rows, ["m", "unet"], subsets=("T1c", "T1+T1c+T2+FLAIR"))
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(lines) == 3                       # header, rule, T1c (all four: nothing missing)
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    row = dict(zip(head, [c.strip() for c in lines[2].strip("|").split("|")]))
    assert row["T2 SSIM healthy"] == "0.600" and row["T2 PSNR dB"] == "26.0"
    assert row["T2 SSIM tumour"] == "–" and row["T1 PSNR dB"] == "–" and row["T1c"] == "●"
    assert "**unet**" not in text                 # a model that synthesised nothing
    assert tables.synthesis_markdown([r for r in rows if r["metric"] == "dice"], ["m"]) is None
