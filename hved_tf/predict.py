"""Segment patients with whatever sequences they have: `python -m hved_tf.predict`.

    python -m hved_tf.predict --model runs/demo --t1c P/t1c.nii.gz --flair P/flair.nii.gz \\
        --out_dir out/P --figure

Inputs: `--t1/--t1c/--t2/--flair` files (any non-empty subset), or `--subject_dir` (one
subject in any supported layout; missing modalities detected from the files present), or
`--data_root` (every subject; one output subfolder each). The model: a training run folder, a
`.keras` file or an export of `hved_tf.export` (`hved_tf.loading`; an export runs its
`segment_raw` signature with its own frozen settings). Each subject is preprocessed as in
training (crop, Nyúl landmarks, whitening), segmented by sliding windows (`hved_tf.inference`:
10 z samples for U-HVED by default) and written in the input's own geometry (shape, affine,
orientation):

- `seg.nii.gz`: labels in `--label_convention` (default: the layout's; files: brats2018);
- `synth_<MODALITY>.nii.gz`: each missing sequence (`--synth_all`: all four), U-HVED only, in
  the network's normalised intensity units (whitened: mean 0, s.d. 1 in the brain);
- `uncertainty.nii.gz`: entropy of the mean class probabilities (nats; 0 = certain, ln 4 max);
  `variance.nii.gz`: variance of the class probabilities across the z samples (summed over the
  classes), when more than one sample is drawn;
- `prob_<class>.nii.gz` with `--probabilities`; `figure.png` with `--figure`;
- `report.json`: modalities used, tumour volumes (ml) per region, timings, model identity.

Every file is written under a temporary name and renamed when complete. An output folder that
holds earlier results is refused unless `--overwrite`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time

import numpy as np
from absl import flags

from hved_tf.cli import run_program
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


def subject_from_files(paths):
    """A Subject from {modality: path}; refuses none and a file given twice."""
    from hved_tf.io.datasets import Subject

    paths = {m: pathlib.Path(p) for m, p in paths.items() if p}
    if not paths:
        raise ValueError("No modality given: pass at least one of --t1, --t1c, --t2, --flair "
                         "(or --subject_dir / --data_root).")
    seen = {}
    for modality, path in paths.items():
        key = path.resolve()
        if key in seen:
            raise ValueError(f"{path} is given as both {seen[key]} and {modality}; each "
                             "modality needs its own file.")
        seen[key] = modality
    ordered = {m: paths[m] for m in MODALITIES if m in paths}
    return Subject(ordered[next(iter(ordered))].name.split(".")[0], ordered, None, "files")


def subjects_from_dir(path, single):
    from hved_tf.io.datasets import discover_subjects

    subjects = discover_subjects(path)
    if single and len(subjects) != 1:
        raise ValueError(f"--subject_dir {path} holds {len(subjects)} subjects "
                         f"({', '.join(s.id for s in subjects[:5])}); give one subject's folder "
                         "or use --data_root.")
    return [dataclasses.replace(s, label_path=None) for s in subjects]


def region_volumes_ml(labels, zooms):
    """{region: volume in ml} of training labels on a grid of voxel size `zooms` (mm)."""
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return {name: float(np.isin(labels, classes).sum() * voxel_ml)
            for name, classes in REGIONS.items()}


def _run_network(trained, subject, options, progress, want_probabilities, want_image):
    """(full-grid RAS outputs, RAS image for the figure or None, geometry, timings, inference
    record).

    Outputs: "labels" (training classes), "entropy", "probabilities" if wanted, and where the
    model gives them "variance" and "recon" (full-grid copies are made only of what will be
    written: a BraTS grid of 4 channels is 140 MB); a trained model runs through
    `hved_tf.inference` on the cropped, standardised volume (the crop undone after), an export
    through its `segment_raw`.
    """
    from hved_tf.inference import check_model_mask, segment
    from hved_tf.loading import ExportedModel
    from hved_tf.modalities import to_training_labels
    from hved_tf.preprocessing.cache import load_subject_image, prepare_subject
    from hved_tf.preprocessing.crop import uncrop

    mask = subject.available
    start = time.perf_counter()
    if isinstance(trained.model, ExportedModel):
        exported = trained.model
        if exported.subset and subset_code(np.flatnonzero(mask > 0)) != exported.subset:
            raise ValueError(f"This exported U-Net runs only on {exported.subset}; the input "
                             f"has {subset_code(np.flatnonzero(mask > 0))}.")
        image, geometries = load_subject_image(subject)
        loaded_s = time.perf_counter() - start
        out = exported.segment_raw(image, mask)
        labels = to_training_labels(out["seg_labels"], exported.label_convention)
        full = {"labels": labels, "probabilities": out["seg_probabilities"],
                "entropy": out["uncertainty"]}
        image = image if want_image else None
        if exported.meta["identity"]["model"] == "u_hved":   # the others export zeros
            full["recon"] = out["recon"]
            if exported.meta["inference"]["num_samples"] > 1:
                full["variance"] = out["variance"]
        timings = {"load_s": loaded_s, "preprocess_and_inference_s":
                   time.perf_counter() - start - loaded_s}
        return full, image, geometries[0], timings, {"export": exported.meta["inference"]}
    check_model_mask(trained.model, mask)
    if trained.landmarks is None:
        raise ValueError("The model has no histogram landmarks (no hist.txt in its run folder): "
                         "give --hist_file.")
    prepared = prepare_subject(subject, trained.landmarks)
    preprocess_s = time.perf_counter() - start
    out = segment(trained.model, prepared.image, mask, options, prepared.minimum,
                  progress=progress)
    box = prepared.box
    full = {"labels": uncrop(out["labels"], box), "entropy": uncrop(out["entropy"], box)}
    if want_probabilities:
        background = np.eye(out["probabilities"].shape[-1], dtype=np.float32)[0]
        probs = np.broadcast_to(background, box.full_shape + background.shape).copy()
        probs[box.slices] = out["probabilities"]
        full["probabilities"] = probs
    if "variance" in out:
        full["variance"] = uncrop(out["variance"], box)
    if "recon" in out:
        recon = out["recon"]
        filled = np.broadcast_to(recon.reshape(-1, recon.shape[-1]).min(0),
                                 box.full_shape + recon.shape[-1:]).copy()
        filled[box.slices] = recon
        full["recon"] = filled
    timings = {"load_and_preprocess_s": preprocess_s, "inference_s": out["seconds"]}
    image = uncrop(prepared.image, box) if want_image else None
    record = {**dataclasses.asdict(options), "window_used": list(out["window"])}
    return full, image, prepared.geometry, timings, record


def predict_subject(trained, subject, out_dir, options, convention=None, synth_all=False,
                    probabilities=False, figure=False, progress=None):
    """Preprocesses, segments and writes one subject's outputs; returns its report (dict)."""
    from hved_tf.figures import save_png, subject_figure
    from hved_tf.io.nifti import save_nifti

    mask = subject.available
    out, image, geometry, timings, record = _run_network(trained, subject, options, progress,
                                                         probabilities, figure)
    start = time.perf_counter()
    convention = convention or subject.label_convention
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name, array, kind="image"):
        save_nifti(out_dir / name, array, geometry, kind=kind)
        written.append(name)

    write("seg.nii.gz", from_training_labels(out["labels"], convention), kind="label")
    present = [m for m, a in zip(MODALITIES, mask) if a > 0]
    synthesised = []
    if "recon" in out:
        for i, modality in enumerate(MODALITIES):
            if synth_all or mask[i] == 0:
                write(f"synth_{modality}.nii.gz", out["recon"][..., i])
                synthesised.append(modality)
    write("uncertainty.nii.gz", out["entropy"])
    if "variance" in out:
        write("variance.nii.gz", out["variance"])
    if probabilities:
        for c, name in enumerate(CLASS_NAMES):
            write(f"prob_{name}.nii.gz", out["probabilities"][..., c])
    if figure:
        rgb, _ = subject_figure(image, mask, out["labels"], out.get("recon"))
        save_png(out_dir / "figure.png", rgb)
        written.append("figure.png")
    timings["write_s"] = time.perf_counter() - start
    report = {
        "subject": subject.id,
        "inputs": {m: str(p) for m, p in subject.paths.items()},
        "modalities_used": present, "subset": subset_code(
            [i for i, a in enumerate(mask) if a > 0]),
        "synthesised": synthesised,
        "label_convention": convention,
        "label_values": dict(zip(CLASS_NAMES, LABEL_CONVENTIONS[convention])),
        "tumour_volume_ml": region_volumes_ml(out["labels"], geometry.ras_zooms),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "inference": record,
        "model": trained.identity,
        "outputs": written + ["report.json"],
    }
    tmp = out_dir / f".report.partial{os.getpid()}.json"
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out_dir / "report.json")
    return report


# ------------------------------------------------------------------ CLI

FLAGS = flags.FLAGS


def define_flags():
    """The CLI's flags (defined only when run as a program: tests import this module)."""
    flags.DEFINE_string("model", None, "A training run folder, a .keras file or an export.")
    for _m in MODALITIES:
        flags.DEFINE_string(_m.lower(), "", f"The {_m} NIfTI file, if the patient has one.")
    flags.DEFINE_string("subject_dir", "", "One subject's folder (any supported layout).")
    flags.DEFINE_string("data_root", "", "A dataset folder: every subject is segmented.")
    flags.DEFINE_string("out_dir", None, "Output folder (one subfolder per subject for a dataset).")
    flags.DEFINE_string("hist_file", "", "Landmarks (hist.txt) when the model folder has none.")
    flags.DEFINE_string("label_convention", "", "brats2018 (0/1/2/4) | brats2023 (0/1/2/3); "
                        "default: the dataset layout's, brats2018 for files.")
    flags.DEFINE_list("window", ["auto"], "Sliding window X,Y,Z, or auto: the whole cropped "
                      "volume when it fits 200x200x160 voxels, else the training patch.")
    flags.DEFINE_float("overlap", 0.5, "Overlap of neighbouring windows, in [0, 1).")
    flags.DEFINE_integer("border", 0, "Voxels cut from each side of a window (the original: 10).")
    flags.DEFINE_enum("blend", "gaussian", ["gaussian", "constant"],
                      "Weights where windows overlap.")
    flags.DEFINE_integer("samples", 10, "z samples averaged for the segmentation (U-HVED).")
    flags.DEFINE_integer("batch_size", 1, "Windows per forward pass.")
    flags.DEFINE_bool("synth_all", False, "Synthesise all four sequences, not only missing ones.")
    flags.DEFINE_bool("probabilities", False, "Also write prob_<class>.nii.gz.")
    flags.DEFINE_bool("figure", False, "Also write figure.png (three planes through the tumour).")
    flags.DEFINE_bool("overwrite", False, "Replace earlier results in --out_dir.")


def inference_options(window, default_window):
    """InferenceOptions from the flags; shared by predict and evaluate."""
    from hved_tf.inference import InferenceOptions

    if window == ["auto"] or not window:
        window = None
    else:
        try:
            window = tuple(int(w) for w in window)
        except ValueError:
            raise ValueError(f"--window must be 'auto' or three integers, got {window}.") from None
        if len(window) != 3 or min(window) < 8:
            raise ValueError(f"--window must be 'auto' or three integers >= 8, got {window}.")
    if FLAGS.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {FLAGS.samples}.")
    if FLAGS.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {FLAGS.batch_size}.")
    return InferenceOptions(window=window, border=FLAGS.border, overlap=FLAGS.overlap,
                            blend=FLAGS.blend, batch_size=FLAGS.batch_size,
                            num_samples=FLAGS.samples,
                            fallback_window=tuple(default_window))


def _progress_printer(label):
    tty = sys.stdout.isatty()
    state = {"next": 0.0, "start": time.time()}

    def progress(done, total):
        if tty:
            print(f"\r  {label}: window {done}/{total}", end="" if done < total else "\n",
                  flush=True)
        elif done / total >= state["next"] or done == total:
            print(f"  {label}: window {done}/{total} ({time.time() - state['start']:.0f} s)",
                  flush=True)
            state["next"] = done / total + 0.25
    return progress


def run():
    given = [m for m in MODALITIES if getattr(FLAGS, m.lower())]
    sources = sum(bool(x) for x in (given, FLAGS.subject_dir, FLAGS.data_root))
    if sources != 1:
        raise ValueError("Give the inputs one way: modality files (--t1/--t1c/--t2/--flair), "
                         "or --subject_dir, or --data_root." if sources else
                         "No modality given: pass at least one of --t1, --t1c, --t2, --flair "
                         "(or --subject_dir / --data_root).")
    if FLAGS.label_convention and FLAGS.label_convention not in LABEL_CONVENTIONS:
        raise ValueError(f"--label_convention must be one of {', '.join(LABEL_CONVENTIONS)}.")
    if given:
        subjects = [subject_from_files({m: getattr(FLAGS, m.lower()) for m in given})]
    else:
        subjects = subjects_from_dir(FLAGS.subject_dir or FLAGS.data_root,
                                     single=bool(FLAGS.subject_dir))
    out_dir = pathlib.Path(FLAGS.out_dir)
    check_out_dir(out_dir, FLAGS.overwrite)
    from hved_tf.loading import load_trained

    trained = load_trained(FLAGS.model, FLAGS.hist_file or None)
    options = inference_options(FLAGS.window, trained.window)
    print(f"model: {trained.name} from {trained.identity['source']}", flush=True)
    for k, subject in enumerate(subjects, start=1):
        target = out_dir / subject.id if FLAGS.data_root else out_dir
        label = f"[{k}/{len(subjects)}] {subject.id}"
        report = predict_subject(trained, subject, target, options,
                                 FLAGS.label_convention or None, FLAGS.synth_all,
                                 FLAGS.probabilities, FLAGS.figure, _progress_printer(label))
        volumes = ", ".join(f"{r} {v:.1f} ml" for r, v in report["tumour_volume_ml"].items())
        print(f"{label}: {report['subset']} -> {target} ({volumes}; "
              f"{sum(report['timings'].values()):.1f} s)", flush=True)


if __name__ == "__main__":
    run_program(define_flags, run, ["model", "out_dir"])
