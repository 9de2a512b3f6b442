"""Segment patients with whatever sequences they have (the library behind `hved_tf.predict`).

`subjects_from_inputs(files, subject_dir, data_root)` turns the CLI's inputs into subjects;
`predict_subject(segmenter, subject, out_dir, config)` segments one through the one
segmentation path (`hved_tf.inference.segmenter`: a run folder or .keras file, or an export
with its own frozen settings) and writes what `config` (a `PredictConfig`) asks for. The
subject's sequences are put on one grid (`hved_tf.preprocessing.grids`: the finest, or
`config.grid.reference`'s) and resampled to the model's voxel size and back
(`hved_tf.inference.spacing`); the outputs lie on that grid, in its file's geometry (shape,
affine, orientation):

- `seg.nii.gz`: labels in `label_convention` (default: the layout's; files: brats2018);
- `synth_<MODALITY>.nii.gz`: each missing sequence (`synth_all`: all four), for models that
  synthesise, in the network's normalised intensity units (whitened: mean 0, s.d. 1 in the
  brain);
- `uncertainty.nii.gz`: entropy of the mean class probabilities (nats; 0 = certain, ln 4 max);
  `variance.nii.gz`: variance of the class probabilities across the z samples (summed over the
  classes), when more than one sample is drawn;
- `prob_<class>.nii.gz` with `probabilities`; `figure.png` with `figure`;
- `seg_on_<MODALITY>.nii.gz` with `outputs_on_each_grid`: the labels on each input's own grid
  where it is not the reference (the class probabilities resampled there, then the argmax);
- `report.json`: modalities used, tumour volumes (ml) per region, the grid and voxel sizes,
  timings, model identity.

A subject's outputs are one set, written whole or not at all: into a temporary sibling folder
renamed into place when complete (`hved_tf.io.atomic`); `overwrite` replaces an earlier set
whole (no stale `prob_*` or `synth_*` of another run stays beside the new report).
`check_out_dir` refuses, before any work, a folder holding earlier results (unless
`overwrite`), other files, or that cannot be written, and removes what killed runs left.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from hved_tf.config import PredictConfig
from hved_tf.data.cache import load_subject_image
from hved_tf.figures import save_figure, subject_columns, subject_figure
from hved_tf.io.atomic import atomic_directory, check_writable, existing_ancestor, write_json
from hved_tf.io.atomic import check_out_dir as check_output_folder
from hved_tf.io.datasets import discover_subjects, subject_from_files
from hved_tf.inference.spacing import segment_at_model_spacing
from hved_tf.io.nifti import check_inputs_from_headers, read_geometry, save_nifti, save_niftis
from hved_tf.preprocessing.grids import checked_reference, same_grid
from hved_tf.preprocessing.resample import onto_grid
from hved_tf.modalities import (CLASS_NAMES, LABEL_CONVENTIONS, MODALITIES, REGIONS,
                                from_training_labels, subset_code)
from hved_tf.progress import duration

OUTPUT_MARKERS = ("seg.nii.gz", "report.json")
OUTPUT_FILES = ("seg.nii.gz", "report.json", "uncertainty.nii.gz", "variance.nii.gz",
                "figure.png")
BYTES_PER_VOXEL_WRITTEN = 2.0     # a compressed float32 output, roughly, with room to spare


def check_out_dir(out_dir, overwrite, per_subject_dirs=False):
    """predict's output folder checked before any work (`hved_tf.io.atomic.check_out_dir`);
    `per_subject_dirs`: a dataset's folder of subject folders (other entries allowed)."""
    def earlier(folder):
        return [p for marker in OUTPUT_MARKERS for p in folder.rglob(marker)]

    def others(folder):
        if per_subject_dirs:
            return []
        return [p for p in folder.iterdir() if p.name not in OUTPUT_FILES
                and not p.name.startswith(("prob_", "synth_", "seg_on_"))]
    check_output_folder(out_dir, overwrite, earlier, others)


def subjects_from_inputs(files, subject_dir="", data_root=""):
    """Subjects from {modality: path} files, one subject's folder, or a dataset folder (labels
    are not read: prediction needs none)."""
    given = {m: p for m, p in (files or {}).items() if p}
    sources = sum(bool(x) for x in (given, subject_dir, data_root))
    if sources != 1:
        raise ValueError("Give the inputs one way: modality files (--t1/--t1c/--t2/--flair), "
                         "or --subject_dir, or --data_root." if sources else
                         "No modality given: pass at least one of --t1, --t1c, --t2, --flair "
                         "(or --subject_dir / --data_root).")
    if given:
        return [subject_from_files(given)]
    subjects = discover_subjects(subject_dir or data_root)
    if subject_dir and len(subjects) != 1:
        raise ValueError(f"--subject_dir {subject_dir} holds {len(subjects)} subjects "
                         f"({', '.join(s.id for s in subjects[:5])}); give one subject's folder "
                         "or use --data_root.")
    return [dataclasses.replace(s, label_path=None) for s in subjects]


def check_inputs_first(subject, reference=""):
    """A subject's files checked from their headers before a model is loaded
    (`hved_tf.io.nifti.check_inputs_from_headers`), and, on different grids, checked to be one
    exam (`hved_tf.preprocessing.grids.check_one_exam`)."""
    checked_reference(check_inputs_from_headers(subject.paths), subject.paths, reference)


def region_volumes_ml(labels, zooms):
    """{region: volume in ml} of training labels on a grid of voxel size `zooms` (mm)."""
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return {name: round(float(np.isin(labels, classes).sum() * voxel_ml), 2)
            for name, classes in REGIONS.items()}


def _write_outputs(seg, subject, out_dir, geometry, config, model_name=""):
    """Writes the output files of one subject (what `config`, a PredictConfig, asks for);
    returns (their names, synthesised modalities)."""
    mask = subject.available
    written, synthesised, jobs = [], [], []

    def write(name, array, kind="image"):          # queued, written together below
        jobs.append((out_dir / name, array, geometry, kind))
        written.append(name)

    labels = seg.full("labels")
    write("seg.nii.gz", from_training_labels(labels, config.convention_for(subject)),
          kind="label")
    recon = seg.full("recon") if "recon" in seg else None
    if recon is not None:
        for i, modality in enumerate(MODALITIES):
            if config.synth_all or mask[i] == 0:
                write(f"synth_{modality}.nii.gz", recon[..., i])
                synthesised.append(modality)
    write("uncertainty.nii.gz", seg.full("entropy"))
    if "variance" in seg:
        write("variance.nii.gz", seg.full("variance"))
    if config.probabilities:
        probs = seg.full("probabilities")
        for c, name in enumerate(CLASS_NAMES):
            write(f"prob_{name}.nii.gz", probs[..., c])
    save_niftis(jobs)
    if config.outputs_on_each_grid:
        written += _seg_on_each_grid(seg, subject, out_dir, geometry, config=config)
    if config.figure:
        columns = subject_columns(seg.full("image"), mask, labels, recon,
                                  uncertainty=seg.full("entropy"))
        subset = subset_code([i for i, a in enumerate(mask) if a > 0])
        save_figure(out_dir / "figure.png", subject_figure(columns, title=(
            f"{subject.id} · {subset} present · {model_name}")))
        written.append("figure.png")
    return written, synthesised


def _seg_on_each_grid(seg, subject, out_dir, reference, config):
    """`seg_on_<MODALITY>.nii.gz` for each input on another grid than the reference: the class
    probabilities resampled onto its grid in world coordinates (linearly), then their argmax."""
    written = []
    probabilities = seg.full("probabilities")
    for modality, path in subject.paths.items():
        geometry = read_geometry(path)
        if same_grid(geometry, reference):
            continue
        probs = np.stack([onto_grid(probabilities[..., c], reference.ras_affine,
                                    geometry.ras_affine, geometry.ras_shape, order=1)
                          for c in range(probabilities.shape[-1])], -1)
        probs[..., 0] += probs.sum(-1) == 0            # outside the reference: background
        labels = np.argmax(probs, -1).astype(np.uint8)
        name = f"seg_on_{modality}.nii.gz"
        save_nifti(out_dir / name, from_training_labels(labels, config.convention_for(subject)),
                   geometry, kind="label")
        written.append(name)
    return written


def predict_subject(segmenter, subject, out_dir, config=PredictConfig(), progress=None):
    """Segments one subject and writes its outputs as one set (all or nothing: into a
    temporary sibling folder renamed to `out_dir` when complete, replacing an earlier set when
    `overwrite`); returns its report (dict)."""
    out_dir = pathlib.Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not config.overwrite:
        raise ValueError(f"{out_dir} is not empty; give a new folder or overwrite=True.")
    start = time.perf_counter()
    grid = config.grid
    image, geometries = load_subject_image(subject, grid.reference)
    load_s = time.perf_counter() - start
    outputs = 3 + 4 + (4 if config.probabilities else 0)
    check_writable(existing_ancestor(out_dir.parent),
                   int(image[..., 0].size * BYTES_PER_VOXEL_WRITTEN * outputs))
    seg = segment_at_model_spacing(segmenter, image, subject.available, geometries[0].ras_zooms,
                                   progress=progress, flipped=geometries[0].ras_flips,
                                   resample=grid.resample, source=f"Subject {subject.id}")
    start = time.perf_counter()
    geometry = geometries[0]
    with atomic_directory(out_dir, replace=True) as tmp:
        written, synthesised = _write_outputs(seg, subject, tmp, geometry, config=config,
                                              model_name=segmenter.identity.get("model", ""))
        report = _report(segmenter, subject, seg, geometry,
                         convention=config.convention_for(subject),
                         outputs=(written, synthesised),
                         timings={"load_s": load_s, **seg.timings,
                                  "write_s": time.perf_counter() - start})
        write_json(tmp / "report.json", report)
    return report


def _report(segmenter, subject, seg, geometry, convention, outputs, timings):
    written, synthesised = outputs
    mask = subject.available
    report = {
        "subject": subject.id,
        "inputs": {m: str(pathlib.Path(p).resolve()) for m, p in subject.paths.items()},
        "modalities_used": [m for m, a in zip(MODALITIES, mask) if a > 0],
        "subset": subset_code([i for i, a in enumerate(mask) if a > 0]),
        "synthesised": synthesised,
        "label_convention": convention,
        "label_values": dict(zip(CLASS_NAMES, LABEL_CONVENTIONS[convention])),
        "tumour_volume_ml": region_volumes_ml(seg.labels, geometry.ras_zooms),
        "grid": {"reference": geometry.path, "spacing_mm": list(geometry.ras_zooms),
                 "shape": list(geometry.ras_shape)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "inference": seg.settings,
        "model": segmenter.identity,
        "outputs": written + ["report.json"],
    }
    return report


def predict_all(segmenter, subjects, out_dir, config=PredictConfig(), per_subject_dirs=False,
                progress_for=None, log=print):
    """Runs `predict_subject` over subjects (one subfolder each when `per_subject_dirs`).

    With several subjects a bad one does not stop the others: it is reported, and at the end
    a ValueError lists every subject that failed (so the command exits non-zero)."""
    out_dir = pathlib.Path(out_dir)
    reports, failed = [], []
    start = time.time()
    for k, subject in enumerate(subjects, start=1):
        target = out_dir / subject.id if per_subject_dirs else out_dir
        left = ((time.time() - start) / (k - 1) * (len(subjects) - k + 1)) if k > 1 else None
        label = f"[{k}/{len(subjects)}] {subject.id}" + (
            f" (about {duration(left)} left)" if left is not None and len(subjects) > 1 else "")
        progress = progress_for(label) if progress_for else None
        try:
            report = predict_subject(segmenter, subject, target, config, progress=progress)
        except ValueError as err:
            if len(subjects) == 1:
                raise
            log(f"{label}: failed: {err}")
            failed.append(f"{subject.id} ({err})")
            continue
        volumes = ", ".join(f"{r} {v:.1f} ml" for r, v in report["tumour_volume_ml"].items())
        log(f"{label}: {report['subset']} -> {target} ({volumes}; "
            f"{sum(report['timings'].values()):.1f} s)")
        reports.append(report)
    if failed:
        raise ValueError(f"{len(failed)} of {len(subjects)} subjects failed, the others were "
                         "written: " + "; ".join(failed))
    return reports
