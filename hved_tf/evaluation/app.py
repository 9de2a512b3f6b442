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
import logging
import pathlib
import time
from typing import Any, Callable, Sequence

import numpy as np

from hved_tf.config import EvaluateConfig
from hved_tf.data.cache import SubjectCache
from hved_tf.evaluation import tables
from hved_tf.evaluation.files import check_predictions, prediction_rows
from hved_tf.evaluation.lesions import PRESETS as LESION_PRESETS
from hved_tf.evaluation.lesions import region_lesion_metrics
from hved_tf.evaluation.panoptic import PROTOCOL as PANOPTIC_PROTOCOL
from hved_tf.evaluation.panoptic import panoptic_metrics
from hved_tf.evaluation.sources import (check_out_dir, model_names, parse_ensembles,
                                        parse_subsets, subjects_to_evaluate)
from hved_tf.evaluation.metrics import brasyn_metrics, image_metrics, region_metrics
from hved_tf.figures import dice_heatmap, save_figure, subject_columns, subject_figure
from hved_tf.inference.loading import open_segmenter
from hved_tf.inference.segmenter import corrects_prior
from hved_tf.inference.spacing import segmented_zooms, target_spacing
from hved_tf.io.atomic import atomic_directory, write_text
from hved_tf.io.nifti import read_geometry
from hved_tf.modalities import MODALITIES, parse_subset, subset_mask
from hved_tf.preprocessing.crop import uncrop
from hved_tf.preprocessing.grids import checked_reference
from hved_tf.progress import Progress
from hved_tf.protocols import (Scoring, describe_inference, protocol_name, protocol_scoring,
                               protocol_settings)

FIGURE_SUBSETS = ("T1c+FLAIR", "T1+T1c+T2+FLAIR")


def _check_segmenters(segmenters):
    for segmenter in segmenters:
        if segmenter.landmarks is None:
            where = segmenter.identity.get("export") or segmenter.identity.get("source")
            raise ValueError(f"{where} has no histogram landmarks to prepare the subjects "
                             "with: give --hist_file, or for an export evaluate the training "
                             "run folder or .keras file it was made from (an export's "
                             "settings are frozen).")


def _score(segmentation, prepared, truth, mask, spacing, base, scoring=None):
    """Long-format rows of one segmentation: regions (voxel-wise, and lesion-wise unless the
    scoring's lesion protocol is "none"), then synthesised sequences."""
    scoring = scoring or Scoring()
    rows = []
    versions = [("labels", "")]
    if "labels_raw" in segmentation:          # post-processed: raw and "_pp" side by side
        versions = [("labels_raw", ""), ("labels", "_pp")]
    for key, suffix in versions:
        rows += label_rows(segmentation.full(key), truth, spacing, base, scoring=scoring,
                           suffix=suffix)
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


def label_rows(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], base: dict,
               scoring: Scoring, suffix: str = "") -> list[dict]:
    """The results rows of one label volume against the truth, on the same grid.

    Args:
        pred: training classes 0..3.
        truth: the same, the subject's labels.
        spacing: voxel sizes (mm).
        base: the row's model, subject and subset.
        scoring: the protocol's (lesion-wise rules, HD95 penalty).
        suffix: added to each metric's name ("_pp": post-processed).

    Returns:
        The rows: voxel-wise metrics per region, then lesion-wise ones.
    """
    rows = []
    for region, values in region_metrics(pred, truth, spacing, scoring.hd95_penalty).items():
        rows += [{**base, "target": region, "metric": m + suffix, "value": v}
                 for m, v in values.items()]
    lesions = LESION_PRESETS.get(scoring.lesion_protocol)
    if scoring.lesion_protocol == PANOPTIC_PROTOCOL:
        for region, values in panoptic_metrics(pred, truth, spacing).items():
            rows += [{**base, "target": region, "metric": m + suffix, "value": v}
                     for m, v in values.items()]
    elif lesions is not None:
        for region, values in region_lesion_metrics(pred, truth, spacing, lesions).items():
            rows += [{**base, "target": region, "metric": m + suffix, "value": float(values[m])}
                     for m in ("lesion_dice", "lesion_hd95")]
    return rows


def _prepared(segmenter, subject, cache_dir, grid):
    """(the subject prepared for `segmenter`, one per set of landmarks; the voxel sizes of the
    grid they are on): at the model's voxel size unless `grid.resample` is off."""
    geometries = [read_geometry(p) for p in subject.paths.values()]
    reference = geometries[checked_reference(geometries, subject.paths, grid.reference)]
    spacing = target_spacing(segmenter, reference.ras_zooms, grid.resample,
                             f"Subject {subject.id}")
    # float32 entries: the subject as predict prepares it, so that a model's scores here
    # equal those of its predict outputs (the training cache may be float16).
    preparations = [SubjectCache(cache_dir / "subjects", landmarks, dtype="float32",
                                 spacing=spacing, reference=grid.reference).get(subject)
                    for landmarks in segmenter.landmark_sets]
    return preparations, segmented_zooms(reference.ras_shape, reference.ras_zooms, spacing)


def evaluate(segmenters: list, names: list[str], subjects: list, cache_dir: pathlib.Path,
             config: EvaluateConfig, scoring: Scoring | None = None,
             figure_dir: pathlib.Path | None = None) -> list[dict]:
    """Scores every segmenter on every subject and subset. Subjects are scored on the grid
    they are segmented on: at the model's voxel size, the labels resampled there by nearest
    neighbour, unless `config.grid.resample` is off.

    Args:
        segmenters: the Segmenters.
        names: their columns.
        subjects: labelled subjects.
        cache_dir: where the prepared subjects are kept.
        config: its subsets, figures and grid.
        scoring: `hved_tf.protocols.Scoring` (lesion_protocol "none": no lesion-wise rows).
        figure_dir: where the panels go (with `config.figures`).

    Returns:
        The long-format rows.
    """
    scoring = scoring or Scoring()
    subsets, figures, grid = parse_subsets(config.subsets), config.figures, config.grid
    _check_segmenters(segmenters)
    rows = []
    progress = Progress("evaluated", len(subjects) * len(segmenters) * len(subsets),
                        "segmentations (subjects x models x subsets)")
    done = 0
    for k, subject in enumerate(subjects):
        for segmenter, name in zip(segmenters, names):
            preparations, spacing = _prepared(segmenter, subject, cache_dir, grid)
            prepared = preparations[0]
            truth = uncrop(np.asarray(prepared.label), prepared.box)
            for code in subsets:
                progress.update(done, subject.id)          # those finished before this one
                done += 1
                mask = subset_mask(parse_subset(code))
                if np.any(mask > prepared.available) or segmenter.capabilities.refuses(mask):
                    continue
                seg = segmenter.segment_prepared_set(preparations, mask)
                base = {"model": name, "subject": subject.id, "subset": code}
                rows += _score(seg, prepared, truth, mask, spacing=spacing, base=base,
                               scoring=scoring)
                if k < figures and figure_dir is not None and code in FIGURE_SUBSETS:
                    columns = subject_columns(prepared.image, mask, seg.labels,
                                              seg.outputs.get("recon"),
                                              truth_labels=np.asarray(prepared.label),
                                              uncertainty=seg.outputs.get("entropy"))
                    save_figure(figure_dir / name.replace(":", "_") / f"{subject.id}_{code}.png",
                                subject_figure(columns, title=f"{subject.id} · {code} "
                                               f"present · {name}"))
    progress.update(done)
    return rows


def _scoring(protocol, lesion_protocol, table_metrics):
    scoring = protocol_scoring(protocol)
    return dataclasses.replace(scoring, lesion_protocol=lesion_protocol or scoring.lesion_protocol,
                               table_metrics=tuple(table_metrics or scoring.table_metrics))


def _checked_predictions(predictions, subjects, names):
    """(checked files, column name, subset code) of `--predictions`, or a refusal."""
    name = predictions.name or pathlib.Path(predictions.folder).resolve().name
    if name in names:
        raise ValueError(f"--predictions_name {name!r} is also a model's name; give another.")
    subset = parse_subsets([predictions.subset])[0]
    check = Progress("checked", len(subjects), "prediction files")
    checked = check_predictions(predictions.folder, subjects, predictions.missing_as_empty,
                                predictions.convention, progress=check.update)
    check.update(len(subjects))
    empty = [i for i, (path, _) in checked.items() if path is None]
    if empty:
        logging.getLogger("hved_tf").warning(
            f"{len(empty)} subjects without a prediction file are scored as empty "
            f"(--missing_as_empty): {', '.join(empty[:10])}")
    return checked, name, subset


def _score_predictions(checked, subjects, name, subset, scoring):
    progress = Progress("scored", len(subjects), "prediction files")
    rows = prediction_rows(checked, subjects, name, subset,
                           score=lambda p, t, spacing, base: label_rows(p, t, spacing, base,
                                                                        scoring=scoring),
                           progress=progress.update)
    progress.update(len(subjects))
    return rows


def _write_results(folder, rows, names, subsets, scoring, about):
    """results.csv, summary.json, table1.md, synthesis.md (when any), table1.png; returns
    the Table-1 Markdown."""
    known = {r["metric"] for r in rows}
    missing = [m for m in scoring.table_metrics if m not in known]
    if missing:
        raise ValueError(f"--table_metrics {', '.join(missing)}: not computed in this "
                         f"evaluation (computed: {', '.join(sorted(known))}); "
                         "post-processed ones (_pp) need a post-processing flag.")
    tables.write_csv(folder / "results.csv", rows)
    tables.write_summary(folder / "summary.json", rows, names, about)
    markdown = tables.table1_markdown(rows, names, subsets, metrics=scoring.table_metrics)
    write_text(folder / "table1.md", markdown)
    synthesis = tables.synthesis_markdown(rows, names, subsets)
    if synthesis:
        write_text(folder / "synthesis.md", synthesis)
    save_figure(folder / "table1.png", dice_heatmap(tables.mean_dice(rows), names, subsets))
    return markdown


def _segmenters(config, options, weights):
    """The Segmenters of --model and --ensemble, refusing an evaluation of nothing."""
    ensembles = parse_ensembles(config.ensembles)
    models, predictions = config.models, config.predictions.folder
    if not models and not ensembles and not predictions:
        raise ValueError("Nothing to evaluate: give --model (repeat to compare), --ensemble "
                         "NAME=PATH,PATH or --predictions DIR.")
    if predictions and not models and not ensembles and not config.data_root:
        raise ValueError("--predictions needs --data_root: the dataset whose label files are "
                         "the truth.")
    hist_file = config.hist_file or None
    segmenters = [open_segmenter(m, hist_file, options, weights) for m in models]
    return segmenters + [open_segmenter(paths, hist_file, options, weights, name=name)
                         for name, paths in ensembles]


def run_evaluation(config: EvaluateConfig, log: Callable = print) -> str:
    """The whole of `python -m hved_tf.evaluate`: loads, checks, scores, writes.

    Args:
        config: the command's EvaluateConfig.
        log: prints one line.

    Returns:
        The Table-1 Markdown.
    """
    config = config.validate()
    out_dir = pathlib.Path(config.out_dir)
    check_out_dir(out_dir, config.overwrite)
    options, weights = protocol_settings(config.inference, config.protocol)
    protocol = protocol_name(config.protocol.name)
    scoring = _scoring(protocol, config.lesion_protocol, config.table_metrics)
    subsets = parse_subsets(config.subsets)
    predictions = config.predictions if config.predictions.folder else None
    segmenters = _segmenters(config, options, weights)
    names = model_names(segmenters)
    subjects, cache = subjects_to_evaluate(config.data_root, config.split,
                                           segmenters[0] if segmenters else None)
    cache = pathlib.Path(config.cache_dir) if config.cache_dir else (
        cache or out_dir.parent / "cache")
    checked = pred_name = pred_subset = None
    if predictions is not None:                  # every file checked before any long work
        checked, pred_name, pred_subset = _checked_predictions(predictions, subjects, names)
    if segmenters:
        corrected = [n for n, s in zip(names, segmenters) if corrects_prior(s)]
        log(f"evaluating {', '.join(names)} on {len(subjects)} subjects x {len(subsets)} "
            f"subsets ({protocol} protocol: {describe_inference(options)}; {weights} weights"
            + (f"; the training windows' class prior corrected for {', '.join(corrected)}, "
               "--noprior_correction to score without" if corrected else "") + ")")
    start = time.time()
    with atomic_directory(out_dir, replace=config.overwrite) as tmp:   # the results: all or none
        rows = (evaluate(segmenters, names, subjects, cache, config=config, scoring=scoring,
                         figure_dir=tmp / "figures")
                if segmenters else [])
        about: dict[str, Any] = {"models": {n: t.identity for n, t in zip(names, segmenters)}}
        if checked is not None and predictions is not None:
            log(f"scoring {pred_name} ({predictions.folder}) on {len(subjects)} subjects, "
                f"subset {pred_subset} ({protocol} protocol)")
            rows += _score_predictions(checked, subjects, pred_name, pred_subset, scoring=scoring)
            names = names + [str(pred_name)]
            about["models"][pred_name] = {
                "model": "predictions", "source": str(pathlib.Path(predictions.folder).resolve()),
                "subset": pred_subset, "convention": predictions.convention,
                "files": {i: (str(p) if p else None) for i, (p, _) in checked.items()}}
        about.update({
            "subjects": [s.id for s in subjects], "subsets": subsets,
            "inference": dataclasses.asdict(options), "settings": describe_inference(options),
            "grid": dataclasses.asdict(config.grid),
            "protocol": protocol, "weights": weights, "scoring": dataclasses.asdict(scoring),
            "seconds": time.time() - start})
        markdown = _write_results(tmp, rows, names, subsets, scoring=scoring, about=about)
    return markdown
