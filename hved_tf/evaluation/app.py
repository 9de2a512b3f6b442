"""Reproduce Table 1 (the library behind `python -m hved_tf.evaluate`).

For every subject of a split and every modality subset (the 15, or `--subsets`), each model
segments the subject from that subset (its Segmenter, `hved_tf.inference.segmenter`), and the prediction is scored on the
subject's full grid against its labels: Dice, HD95 (mm; an empty prediction against a non-empty
truth scores the grid's diagonal, see `hved_tf.evaluation.metrics.hd95`), sensitivity and specificity for
whole tumour, core and enhancing, and lesion-wise Dice and HD95 by the BraTS 2023 or 2024 rules
(`hved_tf.evaluation.lesions`, `--lesion_protocol`); U-HVED's synthesised sequences are scored against the real
ones with PSNR and SSIM (scikit-image) in the network's normalised intensities, inside the real
sequence's brain (voxels above its background value). A model that runs on one subset only (its
capabilities say so: the U-Net) is scored on that subset only.

The subjects: `--data_root` (every labelled subject, or the test part of `--split`; a split
file of ids keeps those ids), else the held-out test subjects of the first model's training
run (its data root, split and seed; the demo's phantoms included).

Outputs in `--out_dir`: `results.csv` (long format: model, subject, subset, target, metric,
value), `summary.json`, `table1.md` (`hved_tf.evaluation.tables`), and with `--figures N` PNG panels of
the first N subjects under `figures/`: one set, written into a temporary sibling folder renamed
when complete (an interrupted or failed evaluation leaves nothing). An output folder holding
results is refused unless `--overwrite` (which replaces the set whole).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np

from hved_tf.config import DEMO_ROOT, TrainConfig
from hved_tf.data.cache import SubjectCache
from hved_tf.data.prepare import SPLIT_FILE, default_cache_dir, demo_root, split_subjects
from hved_tf.evaluation import tables
from hved_tf.evaluation.lesions import PRESETS as LESION_PRESETS
from hved_tf.evaluation.lesions import region_lesion_metrics
from hved_tf.evaluation.metrics import brasyn_metrics, image_metrics, region_metrics
from hved_tf.figures import dice_heatmap, save_figure, subject_columns, subject_figure
from hved_tf.inference.loading import open_segmenter
from hved_tf.io import datasets
from hved_tf.io.atomic import (OutputError, atomic_directory, check_writable, remove_partials,
                               write_text)
from hved_tf.io.nifti import read_geometry
from hved_tf.modalities import MODALITIES, SUBSET_CODES, parse_subset, subset_code, subset_mask
from hved_tf.preprocessing.crop import uncrop
from hved_tf.progress import Progress
from hved_tf.protocols import describe_inference

FIGURE_SUBSETS = ("T1c+FLAIR", "T1+T1c+T2+FLAIR")


def parse_subsets(value):
    """["all"] or subset codes -> canonical codes in the paper's order."""
    if not value or list(value) == ["all"]:
        return list(SUBSET_CODES)
    try:
        codes = {subset_code(parse_subset(v)) for v in value}
    except ValueError as err:
        raise ValueError(f"--subsets: {err} Known codes: {', '.join(SUBSET_CODES)}.") from None
    return [c for c in SUBSET_CODES if c in codes]


def model_names(segmenters):
    """Column names: the model kinds, made unique with the run folders' names."""
    trained_models = segmenters
    names = [t.identity["model"] for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{t.identity['model']}:{pathlib.Path(t.identity['source']).name}"
                 for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{n}#{k + 1}" for k, n in enumerate(names)]
    return names


def subjects_to_evaluate(data_root, split, first_trained):
    """(subjects with labels, cache folder) as described in the module docstring."""
    if data_root:
        subjects = datasets.discover_subjects(data_root)
        if split:
            text = pathlib.Path(split).read_text()
            if "," in text:
                subjects = datasets.apply_split(
                    subjects, datasets.read_release_split(split), source=split)["test"]
            else:
                keep = set(datasets.read_id_list(split))
                subjects = [s for s in subjects if s.id in keep]
        cache = None
    else:
        run_dir = pathlib.Path(first_trained.identity["source"])
        config_path = run_dir / "run_config.json"
        if not config_path.is_file():
            raise ValueError("Without --data_root the subjects are the test split of the first "
                             "model's training run, but it is not a run folder: give "
                             "--data_root.")
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
        cache = pathlib.Path(config.data.cache_dir or default_cache_dir(run_dir))
        root = (demo_root(config.data, cache, config.model.seed)
                if config.data.root == DEMO_ROOT else config.data.root)
        found = datasets.discover_subjects(root)
        split_file = run_dir / SPLIT_FILE
        if split_file.is_file():              # the split the run itself recorded
            ids = json.loads(split_file.read_text())["test"]
            by_id = {s.id: s for s in found}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise ValueError(f"{split_file} names test subjects that {root} no longer "
                                 f"holds ({', '.join(missing[:5])}); give --data_root.")
            subjects = [by_id[i] for i in ids]
        else:                                 # a run from before split.json: the same split
            subjects = split_subjects(found, config.data, config.model.seed)["test"]
    labelled = [s for s in subjects if s.label_path is not None]
    if not labelled:
        raise ValueError("No labelled subject to evaluate (the split's test part is empty or "
                         "has no label files).")
    return labelled, cache


def _check_segmenters(segmenters):
    for segmenter in segmenters:
        if segmenter.landmarks is None:
            where = segmenter.identity.get("export") or segmenter.identity.get("source")
            raise ValueError(f"{where} has no histogram landmarks to prepare the subjects "
                             "with: give --hist_file, or for an export evaluate the training "
                             "run folder or .keras file it was made from (an export's "
                             "settings are frozen).")


def _score(segmentation, prepared, truth, mask, spacing, base, lesion_protocol=None):
    """Long-format rows of one segmentation: regions (voxel-wise, and lesion-wise with a
    `lesion_protocol`), then synthesised sequences."""
    rows = []
    versions = [("labels", "")]
    if "labels_raw" in segmentation:          # post-processed: raw and "_pp" side by side
        versions = [("labels_raw", ""), ("labels", "_pp")]
    for key, suffix in versions:
        pred = segmentation.full(key)
        for region, values in region_metrics(pred, truth, spacing).items():
            rows += [{**base, "target": region, "metric": m + suffix, "value": v}
                     for m, v in values.items()]
        if lesion_protocol is not None:
            for region, values in region_lesion_metrics(pred, truth, spacing,
                                                        lesion_protocol).items():
                rows += [{**base, "target": region, "metric": m + suffix,
                          "value": float(values[m])} for m in ("lesion_dice", "lesion_hd95")]
    if "recon" in segmentation:
        recon = segmentation.outputs["recon"]
        tumour = np.asarray(prepared.label) > 0          # the whole tumour, on the cropped grid
        for i in np.flatnonzero((mask == 0) & (prepared.available > 0)):
            real = np.asarray(prepared.image[..., i])
            brain = real > prepared.minimum[i]
            scores = {**image_metrics(recon[..., i], real, brain),
                      **brasyn_metrics(recon[..., i], real, brain, tumour)}
            rows += [{**base, "target": MODALITIES[i], "metric": m, "value": v}
                     for m, v in scores.items()]
    return rows


def evaluate(segmenters, names, subjects, subsets, cache_dir, figures=0, figure_dir=None,
             lesion_protocol=None):
    """Scores every segmenter on every subject and subset; returns the long-format rows."""
    _check_segmenters(segmenters)
    rows = []
    progress = Progress("evaluated", len(subjects) * len(segmenters) * len(subsets),
                        "segmentations (subjects x models x subsets)")
    done = 0
    for k, subject in enumerate(subjects):
        spacing = read_geometry(next(iter(subject.paths.values()))).ras_zooms
        for segmenter, name in zip(segmenters, names):
            prepared = SubjectCache(cache_dir / "subjects", segmenter.landmarks).get(subject)
            truth = uncrop(np.asarray(prepared.label), prepared.box)
            for code in subsets:
                progress.update(done, subject.id)          # those finished before this one
                done += 1
                mask = subset_mask(parse_subset(code))
                if np.any(mask > prepared.available) or segmenter.capabilities.refuses(mask):
                    continue
                seg = segmenter.segment_prepared(prepared, mask)
                base = {"model": name, "subject": subject.id, "subset": code}
                rows += _score(seg, prepared, truth, mask, spacing, base, lesion_protocol)
                if k < figures and code in FIGURE_SUBSETS:
                    columns = subject_columns(prepared.image, mask, seg.labels,
                                              seg.outputs.get("recon"),
                                              truth_labels=np.asarray(prepared.label),
                                              uncertainty=seg.outputs.get("entropy"))
                    save_figure(figure_dir / name.replace(":", "_") / f"{subject.id}_{code}.png",
                                subject_figure(columns, title=f"{subject.id} · {code} "
                                               f"present · {name}"))
    progress.update(done)
    return rows


RESULT_FILES = ("results.csv", "summary.json", "table1.md", "table1.png")


def check_out_dir(out_dir, overwrite):
    """Refuses, before any work, an output folder that is a file, holds earlier results (unless
    `overwrite`) or other files, or cannot be written; removes what killed runs left."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out_dir {out_dir} is a file; give a folder.")
    remove_partials(out_dir.parent)
    if out_dir.is_dir():
        names = {p.name for p in out_dir.iterdir()}
        earlier = sorted(names & set(RESULT_FILES))
        if earlier and not overwrite:
            raise ValueError(f"--out_dir {out_dir} holds earlier results ({earlier[0]}); use "
                             "another folder or --overwrite.")
        others = sorted(names - set(RESULT_FILES) - {"figures"})
        if others:
            raise ValueError(f"--out_dir {out_dir} holds other files ({others[0]}); the results "
                             "are written as one set into a folder of their own: give a new "
                             "or empty folder.")
    parent = out_dir.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    check_writable(parent)


def run_evaluation(models, out_dir, options, data_root="", split="", subsets=("all",),
                   cache_dir="", hist_file=None, figures=0, overwrite=False, log=print,
                   weights="best", protocol="default", lesion_protocol="brats2023",
                   table_metrics=("dice",)):
    """The whole of `python -m hved_tf.evaluate`: loads, scores, writes; returns the table."""
    out_dir = pathlib.Path(out_dir)
    check_out_dir(out_dir, overwrite)
    if figures < 0:
        raise ValueError("--figures must be >= 0.")
    subsets = parse_subsets(subsets)
    segmenters = [open_segmenter(m, hist_file, options, weights) for m in models]
    names = model_names(segmenters)
    subjects, cache = subjects_to_evaluate(data_root, split, segmenters[0])
    cache = pathlib.Path(cache_dir) if cache_dir else (cache or out_dir.parent / "cache")
    log(f"evaluating {', '.join(names)} on {len(subjects)} subjects x {len(subsets)} subsets "
        f"({protocol} protocol: {describe_inference(options)}; {weights} weights)")
    start = time.time()
    with atomic_directory(out_dir, replace=overwrite) as tmp:      # the results: all or none
        rows = evaluate(segmenters, names, subjects, subsets, cache, figures, tmp / "figures",
                        LESION_PRESETS.get(lesion_protocol))
        tables.write_csv(tmp / "results.csv", rows)
        tables.write_summary(tmp / "summary.json", rows, names, {
            "subjects": [s.id for s in subjects], "subsets": subsets,
            "models": {n: t.identity for n, t in zip(names, segmenters)},
            "inference": dataclasses.asdict(options), "settings": describe_inference(options),
            "protocol": protocol, "weights": weights, "lesion_protocol": lesion_protocol,
            "seconds": time.time() - start})
        known = {r["metric"] for r in rows}
        missing = [m for m in table_metrics if m not in known]
        if missing:
            raise ValueError(f"--table_metrics {', '.join(missing)}: not computed in this "
                             f"evaluation (computed: {', '.join(sorted(known))}); "
                             "post-processed ones (_pp) need a post-processing flag.")
        markdown = tables.table1_markdown(rows, names, subsets, metrics=tuple(table_metrics))
        write_text(tmp / "table1.md", markdown)
        save_figure(tmp / "table1.png", dice_heatmap(tables.mean_dice(rows), names, subsets))
    return markdown
