"""Segmentation at other voxel sizes and on mixed grids: does a model give the same Dice when its
test subjects come at another voxel size, or with each sequence on its own grid? Not a test:
run it by hand.

    python -m tools.benchmarks.spacing --model runs/demo2mm [--subjects 8] [--out docs/benchmarks]
        [--export models/hved/1]

The subjects are the held-out test subjects of the model's training run (the demo's phantoms
at its voxel size). Each is segmented by `hved-predict`'s code (all four sequences, the default
inference settings) as it is, and again after resampling its files (images cubic, the label by
nearest neighbour, in world coordinates over the same field of view):

- `1 mm`: every file at 1x1x1 mm;
- `0.5x0.5x5 mm`: every file at 0.5x0.5x5 mm (thick axial slices);
- `mixed grids`: T1c at 1 mm, FLAIR at 1x1x5 mm, T2 at 0.8x0.8x4 mm, T1 as it is (the outputs
  lie on the finest, T1c's).

Whole-tumour Dice is computed on the grid the outputs are written on, against the label
resampled there, and on the grid the model was trained at (the outputs brought back by nearest
neighbour, against the original label). With `--export` (an export of the same model), each
case is also sent to the export's `segment_raw` as TF Serving would get it (the raw RAS image and
its voxel sizes: the graph resamples) and its labels are compared with predict's (Dice of
each region between the two). Writes `spacing.json` and `spacing.md` into `--out`.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time

import numpy as np

GRIDS = {
    "1 mm": {m: (1.0, 1.0, 1.0) for m in ("T1", "T1c", "T2", "FLAIR", "label")},
    "0.5x0.5x5 mm": {m: (0.5, 0.5, 5.0) for m in ("T1", "T1c", "T2", "FLAIR", "label")},
    "mixed grids": {"T1c": (1.0, 1.0, 1.0), "FLAIR": (1.0, 1.0, 5.0), "T2": (0.8, 0.8, 4.0),
                    "T1": None, "label": (1.0, 1.0, 1.0)},
}


def _resampled_case(subject, zooms_of, folder):
    """The subject's files written at other voxel sizes ({name: zooms or None: as is});
    returns ({modality: path}, the label's path)."""
    from hved_tf.io.nifti import load_nifti, write_nifti
    from hved_tf.preprocessing.resample import SpacingChange, image_resampled

    folder.mkdir(parents=True)
    paths = {}
    sources = {**subject.paths, "label": subject.label_path}
    for name, source in sources.items():
        kind = "label" if name == "label" else "image"
        volume, geometry = load_nifti(source, kind=kind)
        zooms = zooms_of.get(name)
        affine = geometry.ras_affine
        if zooms is not None:
            change = SpacingChange(volume.shape, geometry.ras_zooms, zooms)
            volume = (change.to_model(volume, 0) if kind == "label"
                      else image_resampled(volume, change.to_model))
            affine = change.affine(affine)
        paths[name] = write_nifti(folder / f"{name.lower()}.nii.gz", volume, affine, kind=kind)
    return {m: paths[m] for m in subject.paths}, paths["label"]


def _wt_dice(seg_path, label_path):
    """Whole-tumour Dice of a written segmentation against a label file, on the label's grid
    (the segmentation resampled there by nearest neighbour when the grids differ)."""
    from hved_tf.io.nifti import load_nifti
    from hved_tf.preprocessing.grids import same_grid
    from hved_tf.preprocessing.resample import onto_grid

    seg, g_seg = load_nifti(seg_path, kind="label")
    truth, g_truth = load_nifti(label_path, kind="label")
    if not same_grid(g_seg, g_truth):
        seg = onto_grid(seg, g_seg.ras_affine, g_truth.ras_affine, g_truth.ras_shape, 0)
    a, b = seg > 0, truth > 0
    return float(2 * np.sum(a & b) / max(np.sum(a) + np.sum(b), 1))


def _export_agreement(signature, paths, seg_path, convention, predicted_convention):
    """{region: Dice between the export's segment_raw labels and predict's seg file}."""
    import tensorflow as tf

    from hved_tf.data.cache import load_subject_image
    from hved_tf.evaluation.metrics import region_dice
    from hved_tf.io.datasets import subject_from_files
    from hved_tf.io.nifti import load_nifti
    from hved_tf.modalities import to_training_labels

    subject = subject_from_files(paths)
    image, geometries = load_subject_image(subject)
    out = signature(image=tf.constant(image), mask=tf.constant(subject.available, tf.float32),
                    spacing=tf.constant(geometries[0].ras_zooms, tf.float32))
    served = to_training_labels(out["seg_labels"].numpy(), convention)
    predicted, _ = load_nifti(seg_path, kind="label")
    predicted = to_training_labels(predicted, predicted_convention)
    return region_dice(served, predicted)


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(model, n_subjects, work, export=None):
    from hved_tf.evaluation.sources import subjects_to_evaluate
    from hved_tf.inference.loading import open_segmenter
    from hved_tf.io.datasets import subject_from_files
    from hved_tf.prediction.app import predict_subject

    segmenter = open_segmenter(model)
    signature = convention = None
    if export:
        import json as json_
        import tensorflow as tf
        signature = tf.saved_model.load(export).signatures["segment_raw"]
        convention = json_.loads((pathlib.Path(export) / "assets" /
                                  "hved_export.json").read_text())["label_convention"]
    subjects, _ = subjects_to_evaluate("", "", segmenter)
    subjects = subjects[:n_subjects]
    rows = []
    for k, subject in enumerate(subjects):
        cases = {"as trained": (subject.paths, subject.label_path)}
        for grid, zooms_of in GRIDS.items():
            cases[grid] = _resampled_case(subject, zooms_of, work / subject.id / grid)
        for grid, (paths, label) in cases.items():
            start = time.perf_counter()
            out = work / subject.id / f"out {grid}"
            report = predict_subject(segmenter, subject_from_files(paths), out)
            rows.append({"subject": subject.id, "grid": grid,
                         "wt_dice": _wt_dice(out / "seg.nii.gz", label),
                         "wt_dice_trained_grid": _wt_dice(out / "seg.nii.gz",
                                                          subject.label_path),
                         "shape": report["grid"]["shape"],
                         "spacing_mm": report["grid"]["spacing_mm"],
                         "seconds": time.perf_counter() - start})
            if signature is not None:
                rows[-1]["export_vs_predict"] = _export_agreement(
                    signature, paths, out / "seg.nii.gz", convention, report["label_convention"])
            print(f"[{k + 1}/{len(subjects)}] {subject.id} {grid}: WT {rows[-1]['wt_dice']:.3f} "
                  f"({rows[-1]['seconds']:.1f} s)"
                  + (f", export vs predict {rows[-1]['export_vs_predict']}"
                     if signature is not None else ""), flush=True)
    return segmenter, rows


def summary(rows):
    by_subject = {(r["subject"], r["grid"]): r["wt_dice"] for r in rows}
    subjects = sorted({r["subject"] for r in rows})
    out = {}
    on_trained = {(r["subject"], r["grid"]): r["wt_dice_trained_grid"] for r in rows}
    for grid in ["as trained", *GRIDS]:
        values = [by_subject[(s, grid)] for s in subjects]
        diffs = [by_subject[(s, grid)] - by_subject[(s, "as trained")] for s in subjects]
        back = [on_trained[(s, grid)] - on_trained[(s, "as trained")] for s in subjects]
        out[grid] = {"wt_dice_mean": statistics.mean(values),
                     "difference_mean": statistics.mean(diffs),
                     "difference_worst": min(diffs),
                     "trained_grid_difference_mean": statistics.mean(back),
                     "trained_grid_difference_worst": min(back),
                     "seconds_median": statistics.median(
                         r["seconds"] for r in rows if r["grid"] == grid)}
        agreement = [r["export_vs_predict"] for r in rows
                     if r["grid"] == grid and "export_vs_predict" in r]
        if agreement:
            out[grid]["export_vs_predict_worst"] = {
                region: min(a[region] for a in agreement) for region in agreement[0]}
    return out


def _shown(path):
    """A path relative to the working folder when it lies inside it."""
    try:
        return str(pathlib.Path(path).resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def write(out_dir, segmenter, rows, table):
    out_dir.mkdir(parents=True, exist_ok=True)
    about = {"model": segmenter.identity.get("source"),
             "model_spacing_mm": list(segmenter.spacing), "commit": _commit(),
             "date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(),
             "subjects": len({r["subject"] for r in rows})}
    (out_dir / "spacing.json").write_text(json.dumps({**about, "summary": table, "rows": rows},
                                                     indent=1))
    lines = [f"# Segmentation at other voxel sizes ({about['date']}, commit {about['commit']})",
             "", f"Model: `{_shown(about['model'])}`, trained at "
             f"{'x'.join(f'{s:g}' for s in about['model_spacing_mm'])} mm; "
             f"{about['subjects']} held-out test phantoms, all four sequences. Reproduce: "
             "`python -m tools.benchmarks.spacing --model <run> [--export <export>]`.", "",
             "WT Dice on the grid the outputs are written on (the label resampled there by "
             "nearest neighbour), its difference from the subjects as trained, and the same "
             "difference once the outputs are brought back to the grid the model was trained "
             "at (nearest neighbour) and scored against the original label: the first includes "
             "the blockiness of a label upsampled from coarse voxels, the second does not.", "",
             "| input | WT Dice (mean) | minus as trained: mean | worst subject | on the trained "
             "grid: mean | worst | s per subject |",
             "|---|---|---|---|---|---|---|"]
    for grid, s in table.items():
        lines.append(f"| {grid} | {s['wt_dice_mean']:.3f} | {s['difference_mean']:+.3f} | "
                     f"{s['difference_worst']:+.3f} | {s['trained_grid_difference_mean']:+.3f} "
                     f"| {s['trained_grid_difference_worst']:+.3f} | {s['seconds_median']:.1f} |")
    if any("export_vs_predict_worst" in s for s in table.values()):
        lines += ["", "The export's `segment_raw` (resampling in its graph) against predict "
                  "(resampling on the host), Dice between their labels, the worst subject:", "",
                  "| input | WT | TC | ET |", "|---|---|---|---|"]
        for grid, s in table.items():
            w = s.get("export_vs_predict_worst")
            if w:
                lines.append(f"| {grid} | {w['whole_tumour']:.4f} | {w['tumour_core']:.4f} | "
                             f"{w['enhancing']:.4f} |")
    (out_dir / "spacing.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="A training run folder.")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--out", default="docs/benchmarks")
    parser.add_argument("--export", default="", help="An export of the same model: compare "
                        "its segment_raw with predict.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        segmenter, rows = run(args.model, args.subjects, pathlib.Path(tmp), args.export or None)
    table = summary(rows)
    write(pathlib.Path(args.out), segmenter, rows, table)
    print(pathlib.Path(args.out, "spacing.md").read_text())


if __name__ == "__main__":
    main()
