"""Evaluation results as files: the long-format CSV, the JSON summary, the Table-1 Markdown.

Rows are dicts {"model", "subject", "subset", "target", "metric", "value"}: `target` is a region
(whole_tumour, tumour_core, enhancing) for dice/hd95/sensitivity/specificity, or a modality for
psnr/ssim of a synthesised sequence.

`table1_markdown(rows, models)` lays Dice out like Table 1 of the paper: a row per subset (● the
modality is present, ○ it is missing; the 15 subsets in the paper's order: by size, then by
index), columns region × model in percent, a Means row (the mean of the column's cells). With
two models or more, each other model is compared with the first on the paired per-subject Dice
(two-sided Wilcoxon signed-rank); where p < `alpha` the higher-scoring of the two gets a `*`.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np

from hved_tf.evaluation.metrics import wilcoxon_p
from hved_tf.io.atomic import write_text
from hved_tf.modalities import MODALITIES, REGION_SHORT, REGIONS, SUBSET_CODES, parse_subset

FIELDS = ("model", "subject", "subset", "target", "metric", "value")


def write_csv(path: str | os.PathLike, rows: Iterable[dict]) -> pathlib.Path:
    """Writes results.csv, whole or not at all.

    Args:
        path: the file.
        rows: dicts with the keys of `FIELDS` (values written to full precision).

    Returns:
        The path.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "value": repr(float(row["value"]))})
    return write_text(path, buffer.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Reads a results.csv.

    Args:
        path: the file.

    Returns:
        Its rows, values as floats.
    """
    with open(path, newline="") as f:
        return [{**row, "value": float(row["value"])} for row in csv.DictReader(f)]


def _values(rows, model, subset, target, metric):
    """{subject: value} of one cell."""
    return {r["subject"]: r["value"] for r in rows
            if r["model"] == model and r["subset"] == subset and r["target"] == target
            and r["metric"] == metric}


def _nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def summary(rows: list[dict], models: Sequence[str]) -> dict:
    """The mean of every metric per model, subset and target (NaNs left out).

    Args:
        rows: results rows.
        models: the models' names.

    Returns:
        {model: {subset: {target: {metric: mean}}}}.
    """
    out = {}
    for model in models:
        per_subset: dict[str, dict] = {}
        for r in rows:
            if r["model"] != model:
                continue
            per_subset.setdefault(r["subset"], {}).setdefault(r["target"], {}).setdefault(
                r["metric"], []).append(r["value"])
        out[model] = {s: {t: {m: _nanmean(v) for m, v in metrics.items()}
                          for t, metrics in targets.items()}
                      for s, targets in per_subset.items()}
    return out


def mean_dice(rows: list[dict]) -> dict[tuple, float]:
    """The mean Dice of each cell (for the heat map).

    Args:
        rows: results rows.

    Returns:
        {(model, subset, region): mean Dice over the subjects}.
    """
    cells: dict[tuple, list] = {}
    for r in rows:
        if r["metric"] == "dice":
            cells.setdefault((r["model"], r["subset"], r["target"]), []).append(r["value"])
    return {key: _nanmean(values) for key, values in cells.items()}


def write_summary(path: str | os.PathLike, rows: list[dict], models: Sequence[str],
                  extra: dict | None = None) -> pathlib.Path:
    """Writes summary.json, whole or not at all.

    Args:
        path: the file.
        rows: results rows.
        models: the models' names.
        extra: more keys (subjects, settings, ...).

    Returns:
        The path.
    """
    data = {"models": list(models), "summary": summary(rows, models), **(extra or {})}
    return write_text(path, json.dumps(data, indent=1, allow_nan=True))


def significance(rows: list[dict], models: Sequence[str], subset: str, region: str,
                 alpha: float = 0.05) -> dict[str, bool]:
    """The cells that get a `*` (see the module docstring).

    Args:
        rows: results rows.
        models: the models' names, the first compared with each other.
        subset: a subset code.
        region: a region name.
        alpha: the test's level.

    Returns:
        {model: True} for the better of each significantly different pair.
    """
    marks: dict[str, bool] = {}
    if len(models) < 2:
        return marks
    first = _values(rows, models[0], subset, region, metric="dice")
    for other in models[1:]:
        second = _values(rows, other, subset, region, metric="dice")
        common = sorted(set(first) & set(second))
        if len(common) < 2:
            continue
        a = [first[s] for s in common]
        b = [second[s] for s in common]
        p = wilcoxon_p(a, b)
        if not math.isnan(p) and p < alpha:
            marks[models[0] if np.mean(a) > np.mean(b) else other] = True
    return marks


METRIC_NAMES = {"dice": "Dice", "dice_pp": "Dice after post-processing",
                "lesion_dice": "lesion-wise Dice",
                "lesion_dice_pp": "lesion-wise Dice after post-processing",
                "detection_f1": "lesion detection F1 (RQ)", "pq": "panoptic quality"}


def table1_markdown(rows: list[dict], models: Sequence[str], subsets: Sequence[str] = SUBSET_CODES,
                    alpha: float = 0.05, metrics: Sequence[str] = ("dice",)) -> str:
    """The Markdown table (see the module docstring).

    Args:
        rows: results rows.
        models: the models' names (columns).
        subsets: the subset codes (rows).
        alpha: the level of the significance marks.
        metrics: the Dice-like metrics shown (in %), e.g. "dice", "dice_pp", "lesion_dice".

    Returns:
        The table and its note.
    """
    columns = [(metric, region, model) for metric in metrics for region in REGIONS
               for model in models]

    def title(metric, region, model):
        name = "" if list(metrics) == ["dice"] else f" {metric}"
        return f"{REGION_SHORT[region]}{name} {model}"

    head = list(MODALITIES) + [title(*c) for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells: dict[tuple, list] = {c: [] for c in columns}
    for code in subsets:
        present = set(parse_subset(code))
        row = ["●" if i in present else "○" for i in range(len(MODALITIES))]
        marks = {region: significance(rows, models, code, region, alpha=alpha)
                 for region in REGIONS}
        for metric, region, model in columns:
            values = _values(rows, model, code, region, metric=metric)
            if not values:
                row.append("–")
                continue
            mean = 100.0 * _nanmean(list(values.values()))
            cells[(metric, region, model)].append(mean)
            star = metric == "dice" and marks[region].get(model)
            row.append(f"{mean:.1f}" + ("*" if star else ""))
        lines.append("| " + " | ".join(row) + " |")
    means = ["**Means**"] + [""] * (len(MODALITIES) - 1)
    for column in columns:
        means.append(f"{np.mean(cells[column]):.1f}" if cells[column] else "–")
    lines.append("| " + " | ".join(means) + " |")
    shown = ", ".join(METRIC_NAMES.get(m, m) for m in metrics)
    note = (f"{shown} (%) per modality subset (● present, ○ missing). `*`: the better of the "
            f"pair ({models[0]} vs the other model) by a two-sided Wilcoxon signed-rank test on "
            f"the paired per-subject Dice, p < {alpha}." if len(models) > 1 else
            f"{shown} (%) per modality subset (● present, ○ missing).")
    return "\n".join(lines) + "\n\n" + note + "\n"


SYNTHESIS_METRICS = (("brasyn_ssim_healthy", "SSIM healthy", "{:.3f}"),
                     ("brasyn_ssim_tumour", "SSIM tumour", "{:.3f}"),
                     ("brasyn_psnr", "PSNR dB", "{:.1f}"))


def synthesis_markdown(rows: list[dict], models: Sequence[str],
                       subsets: Sequence[str] = SUBSET_CODES) -> str | None:
    """The synthesis table: per model, a row per subset with a missing sequence, and for each
    sequence its BraSyn scores where it was synthesised (means over the subjects; "–" where the
    sequence was given).

    Args:
        rows: results rows.
        models: the models' names.
        subsets: the subset codes.

    Returns:
        The Markdown, or None when no model synthesised anything.
    """
    synthesised = {r["model"] for r in rows if r["metric"] == "brasyn_psnr"}
    sections = []
    for model in [m for m in models if m in synthesised]:
        head = list(MODALITIES) + [f"{m} {label}" for m in MODALITIES
                                   for _, label, _ in SYNTHESIS_METRICS]
        lines = [f"**{model}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for code in subsets:
            present = set(parse_subset(code))
            if len(present) == len(MODALITIES):
                continue
            row = ["●" if i in present else "○" for i in range(len(MODALITIES))]
            for modality in MODALITIES:
                for metric, _, fmt in SYNTHESIS_METRICS:
                    values = _values(rows, model, code, modality, metric=metric)
                    mean = _nanmean(list(values.values())) if values else float("nan")
                    row.append("–" if math.isnan(mean) else fmt.format(mean))
            lines.append("| " + " | ".join(row) + " |")
        sections.append("\n".join(lines))
    if not sections:
        return None
    return ("\n\n".join(sections) + "\n\nSynthesised sequences scored as BraSyn does (each "
            "volume clipped to its 0.5-99.5 percentiles in the brain and scaled to [0, 1]; SSIM "
            "in the healthy brain and in the whole tumour, PSNR in the brain), means over the "
            "subjects, for each sequence missing from the subset (● present, ○ missing).\n")
