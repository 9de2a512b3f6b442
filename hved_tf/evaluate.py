"""Reproduce Table 1: `python -m hved_tf.evaluate --model M [--model M2 ...] --out_dir O`.

For every subject of a split and every modality subset (the 15, or `--subsets`), each model
segments the subject from that subset (`hved_tf.inference`), and the prediction is scored on the
subject's full grid against its labels: Dice, HD95 (mm; an empty prediction against a non-empty
truth scores the grid's diagonal, see `hved_tf.metrics.hd95`), sensitivity and specificity for
whole tumour, core and enhancing; U-HVED's synthesised sequences are scored against the real
ones with PSNR and SSIM (scikit-image) in the network's normalised intensities, inside the real
sequence's brain (voxels above its background value). A U-Net trained on one subset is scored
on that subset only.

The subjects: `--data_root` (every labelled subject, or the test part of `--split`; a split
file of ids keeps those ids), else the held-out test subjects of the first model's training
run (its data root, split and seed; the demo's phantoms included).

Outputs in `--out_dir`: `results.csv` (long format: model, subject, subset, target, metric,
value), `summary.json`, `table1.md` (`hved_tf.tables`), and with `--figures N` PNG panels of
the first N subjects under `figures/`. An output folder holding results is refused unless
`--overwrite`.
"""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np
from absl import flags

from hved_tf.cli import run_program
from hved_tf.modalities import MODALITIES, SUBSET_CODES, parse_subset, subset_code, subset_mask

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


def model_names(trained_models):
    """Column names: the model kinds, made unique with the run folders' names."""
    names = [t.name for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{t.name}:{pathlib.Path(t.identity['source']).name}" for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{n}#{k + 1}" for k, n in enumerate(names)]
    return names


def subjects_to_evaluate(data_root, split, first_trained):
    """(subjects with labels, cache folder) as described in the module docstring."""
    from hved_tf.config import DEMO_ROOT, TrainConfig
    from hved_tf.data.prepare import default_cache_dir, demo_root, split_subjects
    from hved_tf.io import datasets

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
        subjects = split_subjects(datasets.discover_subjects(root), config.data,
                                  config.model.seed)["test"]
    labelled = [s for s in subjects if s.label_path is not None]
    if not labelled:
        raise ValueError("No labelled subject to evaluate (the split's test part is empty or "
                         "has no label files).")
    return labelled, cache


def evaluate(trained_models, names, subjects, subsets, cache_dir, options, figures=0,
             figure_dir=None, log=print):
    """Scores every model on every subject and subset; returns the long-format rows."""
    from hved_tf.figures import save_png, subject_figure
    from hved_tf.inference import ModelPredictor, segment
    from hved_tf.io.nifti import read_geometry
    from hved_tf.loading import ExportedModel
    from hved_tf.metrics import image_metrics, region_metrics
    from hved_tf.models.unet import SubsetUNet
    from hved_tf.preprocessing.cache import SubjectCache
    from hved_tf.preprocessing.crop import uncrop

    for trained in trained_models:
        if isinstance(trained.model, ExportedModel):
            raise ValueError(f"{trained.identity['export']} is an export: evaluate a training "
                             "run folder or a .keras file (an export's settings are frozen).")
        if trained.landmarks is None:
            raise ValueError(f"{trained.identity['source']} has no histogram landmarks "
                             "(hist.txt): give --hist_file.")
    predictors = [ModelPredictor(t.model, options.num_samples) for t in trained_models]
    rows = []
    start = time.time()
    for k, subject in enumerate(subjects):
        spacing = read_geometry(next(iter(subject.paths.values()))).ras_zooms
        for trained, name, predictor in zip(trained_models, names, predictors):
            prepared = SubjectCache(cache_dir / "subjects", trained.landmarks).get(subject)
            truth = uncrop(np.asarray(prepared.label), prepared.box)
            for code in subsets:
                mask = subset_mask(parse_subset(code))
                if np.any(mask > prepared.available):
                    continue
                if isinstance(trained.model, SubsetUNet) and code != trained.model.subset:
                    continue
                out = segment(trained.model, prepared.image, mask, options, prepared.minimum,
                              predictor=predictor)
                pred = uncrop(out["labels"], prepared.box)
                base = {"model": name, "subject": subject.id, "subset": code}
                for region, values in region_metrics(pred, truth, spacing).items():
                    rows += [{**base, "target": region, "metric": m, "value": v}
                             for m, v in values.items()]
                for i in np.flatnonzero((mask == 0) & (prepared.available > 0)):
                    if "recon" not in out:
                        break
                    real = np.asarray(prepared.image[..., i])
                    scores = image_metrics(out["recon"][..., i], real,
                                           real > prepared.minimum[i])
                    rows += [{**base, "target": MODALITIES[i], "metric": m, "value": v}
                             for m, v in scores.items()]
                if k < figures and code in FIGURE_SUBSETS:
                    rgb, _ = subject_figure(prepared.image, mask, out["labels"], out.get("recon"),
                                            truth_labels=prepared.label,
                                            truth_image=prepared.image)
                    save_png(figure_dir / name.replace(":", "_") / f"{subject.id}_{code}.png",
                             rgb)
        log(f"[{k + 1}/{len(subjects)}] {subject.id} ({time.time() - start:.0f} s)")
    return rows


# ------------------------------------------------------------------ CLI

FLAGS = flags.FLAGS
RESULT_FILES = ("results.csv", "summary.json", "table1.md")


def define_flags():
    """The CLI's flags (defined only when run as a program: tests import this module)."""
    flags.DEFINE_multi_string("model", None, "A run folder or .keras file; repeat to compare.")
    flags.DEFINE_string("data_root", "", "Dataset folder (default: the first run's test split).")
    flags.DEFINE_string("split", "", "With --data_root: the release's split CSV (its test part) "
                        "or a file of subject ids.")
    flags.DEFINE_list("subsets", ["all"], "'all' or subset codes, e.g. T1c,T1c+FLAIR.")
    flags.DEFINE_string("out_dir", None, "Output folder.")
    flags.DEFINE_string("cache_dir", "", "Preprocessed-subject cache (default: the run's, or "
                        "<out_dir>/cache).")
    flags.DEFINE_string("hist_file", "", "Landmarks when a model folder has none.")
    flags.DEFINE_list("window", ["auto"], "Sliding window X,Y,Z, or auto (as predict).")
    flags.DEFINE_float("overlap", 0.5, "Overlap of neighbouring windows, in [0, 1).")
    flags.DEFINE_integer("border", 0, "Voxels cut from each side of a window.")
    flags.DEFINE_enum("blend", "gaussian", ["gaussian", "constant"], "Overlap weights.")
    flags.DEFINE_integer("samples", 10, "z samples averaged for the segmentation (U-HVED).")
    flags.DEFINE_integer("batch_size", 1, "Windows per forward pass.")
    flags.DEFINE_integer("figures", 0, "PNG panels for the first N subjects.")
    flags.DEFINE_bool("overwrite", False, "Replace earlier results in --out_dir.")


def run():
    from hved_tf import tables
    from hved_tf.loading import load_trained
    from hved_tf.predict import inference_options

    out_dir = pathlib.Path(FLAGS.out_dir)
    earlier = [out_dir / n for n in RESULT_FILES if (out_dir / n).exists()]
    if earlier and not FLAGS.overwrite:
        raise ValueError(f"--out_dir {out_dir} holds earlier results ({earlier[0].name}); use "
                         "another folder or --overwrite.")
    if FLAGS.figures < 0 or FLAGS.samples < 1 or FLAGS.batch_size < 1:
        raise ValueError("--figures must be >= 0, --samples and --batch_size >= 1.")
    subsets = parse_subsets(FLAGS.subsets)
    trained_models = [load_trained(m, FLAGS.hist_file or None) for m in FLAGS.model]
    names = model_names(trained_models)
    subjects, cache = subjects_to_evaluate(FLAGS.data_root, FLAGS.split, trained_models[0])
    cache = pathlib.Path(FLAGS.cache_dir) if FLAGS.cache_dir else (cache or out_dir / "cache")
    options = inference_options(FLAGS.window, trained_models[0].window)
    print(f"evaluating {', '.join(names)} on {len(subjects)} subjects x {len(subsets)} subsets",
          flush=True)
    start = time.time()
    rows = evaluate(trained_models, names, subjects, subsets, cache, options, FLAGS.figures,
                    out_dir / "figures", log=lambda line: print(line, flush=True))
    tables.write_csv(out_dir / "results.csv", rows)
    tables.write_summary(out_dir / "summary.json", rows, names, {
        "subjects": [s.id for s in subjects], "subsets": subsets,
        "models": {n: t.identity for n, t in zip(names, trained_models)},
        "seconds": time.time() - start})
    markdown = tables.table1_markdown(rows, names, subsets)
    tables.write_text(out_dir / "table1.md", markdown)
    print(markdown, flush=True)
    print(f"wrote {out_dir / 'results.csv'}, summary.json, table1.md", flush=True)


if __name__ == "__main__":
    run_program(define_flags, run, ["model", "out_dir"])
