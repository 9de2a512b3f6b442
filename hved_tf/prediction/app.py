"""Segment patients with whatever sequences they have (the library behind `hved_tf.predict`).

`subjects_from_inputs(files, subject_dir, data_root)` turns the CLI's inputs into subjects;
`predict_subject(segmenter, subject, out_dir, ...)` segments one through the one segmentation
path (`hved_tf.inference.segmenter`: a run folder or .keras file, or an export with its own
frozen settings) and writes, in the input's own geometry (shape, affine, orientation):

- `seg.nii.gz`: labels in `convention` (default: the layout's; files: brats2018);
- `synth_<MODALITY>.nii.gz`: each missing sequence (`synth_all`: all four), for models that
  synthesise, in the network's normalised intensity units (whitened: mean 0, s.d. 1 in the
  brain);
- `uncertainty.nii.gz`: entropy of the mean class probabilities (nats; 0 = certain, ln 4 max);
  `variance.nii.gz`: variance of the class probabilities across the z samples (summed over the
  classes), when more than one sample is drawn;
- `prob_<class>.nii.gz` with `probabilities`; `figure.png` with `figure`;
- `report.json`: modalities used, tumour volumes (ml) per region, timings, model identity.

Every file is written under a temporary name and renamed when complete (`hved_tf.io.atomic`).
`check_out_dir` refuses a folder holding earlier results unless `overwrite`.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from hved_tf.data.cache import load_subject_image
from hved_tf.figures import save_png, subject_figure
from hved_tf.io.atomic import write_json
from hved_tf.io.datasets import discover_subjects, subject_from_files
from hved_tf.io.nifti import save_nifti
from hved_tf.modalities import (CLASS_NAMES, LABEL_CONVENTIONS, MODALITIES, REGIONS,
                                from_training_labels, subset_code)

OUTPUT_MARKERS = ("seg.nii.gz", "report.json")


def check_out_dir(out_dir, overwrite):
    """Refuses a folder holding earlier results (unless `overwrite`)."""
    out_dir = pathlib.Path(out_dir)
    if out_dir.is_file():
        raise ValueError(f"--out_dir {out_dir} is a file; give a folder.")
    if overwrite or not out_dir.is_dir():
        return
    earlier = [p for marker in OUTPUT_MARKERS for p in out_dir.rglob(marker)]
    if earlier:
        raise ValueError(f"--out_dir {out_dir} holds earlier results ({earlier[0]}); use "
                         "another folder or --overwrite.")


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


def region_volumes_ml(labels, zooms):
    """{region: volume in ml} of training labels on a grid of voxel size `zooms` (mm)."""
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return {name: float(np.isin(labels, classes).sum() * voxel_ml)
            for name, classes in REGIONS.items()}


def _write_outputs(seg, subject, out_dir, geometry, convention, synth_all, probabilities,
                   figure):
    """Writes the output files of one subject; returns (their names, synthesised modalities)."""
    mask = subject.available
    written, synthesised = [], []

    def write(name, array, kind="image"):
        save_nifti(out_dir / name, array, geometry, kind=kind)
        written.append(name)

    labels = seg.full("labels")
    write("seg.nii.gz", from_training_labels(labels, convention), kind="label")
    recon = seg.full("recon") if "recon" in seg else None
    if recon is not None:
        for i, modality in enumerate(MODALITIES):
            if synth_all or mask[i] == 0:
                write(f"synth_{modality}.nii.gz", recon[..., i])
                synthesised.append(modality)
    write("uncertainty.nii.gz", seg.full("entropy"))
    if "variance" in seg:
        write("variance.nii.gz", seg.full("variance"))
    if probabilities:
        probs = seg.full("probabilities")
        for c, name in enumerate(CLASS_NAMES):
            write(f"prob_{name}.nii.gz", probs[..., c])
    if figure:
        rgb, _ = subject_figure(seg.full("image"), mask, labels, recon)
        save_png(out_dir / "figure.png", rgb)
        written.append("figure.png")
    return written, synthesised


def predict_subject(segmenter, subject, out_dir, convention=None, synth_all=False,
                    probabilities=False, figure=False, progress=None):
    """Segments and writes one subject's outputs; returns its report (dict)."""
    start = time.perf_counter()
    image, geometries = load_subject_image(subject)
    load_s = time.perf_counter() - start
    seg = segmenter.segment_raw(image, subject.available, progress=progress)
    start = time.perf_counter()
    convention = convention or subject.label_convention
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    geometry = geometries[0]
    written, synthesised = _write_outputs(seg, subject, out_dir, geometry, convention,
                                          synth_all, probabilities, figure)
    timings = {"load_s": load_s, **seg.timings, "write_s": time.perf_counter() - start}
    mask = subject.available
    report = {
        "subject": subject.id,
        "inputs": {m: str(p) for m, p in subject.paths.items()},
        "modalities_used": [m for m, a in zip(MODALITIES, mask) if a > 0],
        "subset": subset_code([i for i, a in enumerate(mask) if a > 0]),
        "synthesised": synthesised,
        "label_convention": convention,
        "label_values": dict(zip(CLASS_NAMES, LABEL_CONVENTIONS[convention])),
        "tumour_volume_ml": region_volumes_ml(seg.labels, geometry.ras_zooms),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "inference": seg.settings,
        "model": segmenter.identity,
        "outputs": written + ["report.json"],
    }
    write_json(out_dir / "report.json", report)
    return report


def predict_all(segmenter, subjects, out_dir, per_subject_dirs, convention=None,
                synth_all=False, probabilities=False, figure=False, progress_for=None,
                log=print):
    """Runs `predict_subject` over subjects (one subfolder each when `per_subject_dirs`)."""
    out_dir = pathlib.Path(out_dir)
    reports = []
    for k, subject in enumerate(subjects, start=1):
        target = out_dir / subject.id if per_subject_dirs else out_dir
        label = f"[{k}/{len(subjects)}] {subject.id}"
        progress = progress_for(label) if progress_for else None
        report = predict_subject(segmenter, subject, target, convention, synth_all,
                                 probabilities, figure, progress)
        volumes = ", ".join(f"{r} {v:.1f} ml" for r, v in report["tumour_volume_ml"].items())
        log(f"{label}: {report['subset']} -> {target} ({volumes}; "
            f"{sum(report['timings'].values()):.1f} s)")
        reports.append(report)
    return reports
