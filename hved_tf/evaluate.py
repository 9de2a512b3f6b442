"""Reproduce Table 1: `python -m hved_tf.evaluate --model M [--model M2 ...] --out_dir O`;
models averaged as one (`--ensemble NAME=M1,M2,M3`); segmentation files of any tool
(`--predictions DIR --data_root D`).

Every subject of a split, every modality subset, every model: Dice, HD95, sensitivity,
specificity, and PSNR/SSIM of the synthesised sequences; `results.csv`, `summary.json`,
`table1.md` and figures. What exactly: `hved_tf.evaluation.app`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
from absl import flags

from hved_tf.cli import (Program, define_grid_flags, define_inference_flags,
                         define_protocol_flags, flag_group, grid_options, protocol_settings)
from hved_tf.config import EvaluateConfig
from hved_tf.evaluation.app import Predictions, run_evaluation
from hved_tf.evaluation.files import PREDICTION_CONVENTIONS

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("models"):
        flags.DEFINE_multi_string("model", None, "A run folder or .keras file; repeat to "
                                  "compare.")
        flags.DEFINE_multi_string("ensemble", None, "NAME=PATH,PATH[,...]: run folders (or "
                                  ".keras files) averaged as one model named NAME in the "
                                  "tables; repeatable.")
        flags.DEFINE_string("hist_file", "", "Landmarks when a model folder has none.")
    with flag_group("data"):
        flags.DEFINE_string("data_root", "", "Dataset folder (default: the first run's test "
                            "split).")
        flags.DEFINE_string("split", "", "With --data_root: the release's split CSV (its test "
                            "part) or a file of subject ids.")
        flags.DEFINE_list("subsets", ["all"], "'all' or subset codes, e.g. T1c,T1c+FLAIR.")
        flags.DEFINE_enum("lesion_protocol", "", ["", "brats2023", "brats2024", "brats2025",
                                                  "none"],
                          "Lesion-wise Dice and HD95 as the BraTS challenge of that year ranks "
                          "them (2023/2024: dilation 3; lesions of at most 50, or 20 and 10 for "
                          "ET, voxels left out; 2025: panoptica's one-to-one matched instances, "
                          "with detection F1 and PQ, needs the [brats] extra), or none; default: "
                          "the protocol's (brats2023).")
        flags.DEFINE_string("cache_dir", "", "Preprocessed-subject cache (default: the run's, "
                            "or <out_dir>/../cache).")
    with flag_group("segmentations on disk (another tool's, or predict's)"):
        flags.DEFINE_string("predictions", "", "A folder of <subject>.nii.gz or "
                            "<subject>/seg.nii.gz files, scored against --data_root's labels "
                            "(with or without --model).")
        flags.DEFINE_string("predictions_name", "", "Their column in the tables (default: the "
                            "folder's name).")
        flags.DEFINE_string("predictions_subset", "T1+T1c+T2+FLAIR", "The sequences the tool "
                            "was given (their row in table1.md).")
        flags.DEFINE_enum("predictions_convention", "auto", list(PREDICTION_CONVENTIONS),
                          "Their labels: auto (from the values), brats2018 (0/1/2/4), "
                          "brats2023 (0/1/2/3).")
        flags.DEFINE_bool("missing_as_empty", False, "Score subjects without a file as an "
                          "empty prediction (else they are refused, listed).")
    define_inference_flags()
    define_grid_flags()
    define_protocol_flags()
    with flag_group("output"):
        flags.DEFINE_string("out_dir", None, "Output folder.")
        flags.DEFINE_integer("figures", 0, "PNG panels for the first N subjects.")
        flags.DEFINE_list("table_metrics", [], "Columns of table1.md: dice, dice_pp "
                          "(post-processed), lesion_dice, lesion_dice_pp, and with "
                          "brats2025 detection_f1, pq (default: the protocol's).")
        flags.DEFINE_bool("overwrite", False, "Replace earlier results in --out_dir.")


def run():
    log = lambda line: print(line, flush=True)  # noqa: E731
    options, weights = protocol_settings()
    predictions = Predictions(
        FLAGS.predictions, name=FLAGS.predictions_name, subset=FLAGS.predictions_subset,
        convention=FLAGS.predictions_convention,
        missing_as_empty=FLAGS.missing_as_empty) if FLAGS.predictions else None
    config = EvaluateConfig(
        out_dir=FLAGS.out_dir, models=tuple(FLAGS.model or ()),
        ensembles=tuple(FLAGS.ensemble or ()), predictions=predictions,
        data_root=FLAGS.data_root, split=FLAGS.split, subsets=tuple(FLAGS.subsets or ()),
        cache_dir=FLAGS.cache_dir, hist_file=FLAGS.hist_file, figures=FLAGS.figures,
        overwrite=FLAGS.overwrite, weights=weights, protocol=FLAGS.protocol,
        lesion_protocol=FLAGS.lesion_protocol, table_metrics=tuple(FLAGS.table_metrics),
        grid=grid_options())
    markdown = run_evaluation(config, options, log)
    print(markdown, flush=True)
    print(f"wrote {FLAGS.out_dir}/results.csv, summary.json, table1.md, table1.png "
          "(and synthesis.md when sequences were synthesised)", flush=True)


PROGRAM = Program(define_flags, run, ("out_dir",), name="evaluate", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
