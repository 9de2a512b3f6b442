"""Reproduce Table 1: `python -m hved_tf.evaluate --model M [--model M2 ...] --out_dir O`.

Every subject of a split, every modality subset, every model: Dice, HD95, sensitivity,
specificity, and PSNR/SSIM of the synthesised sequences; `results.csv`, `summary.json`,
`table1.md` and figures. What exactly: `hved_tf.evaluation.app`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
from absl import flags

from hved_tf.cli import (Program, define_inference_flags, define_protocol_flags, flag_group,
                         protocol_settings)
from hved_tf.evaluation.app import run_evaluation

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("models"):
        flags.DEFINE_multi_string("model", None, "A run folder or .keras file; repeat to "
                                  "compare.")
        flags.DEFINE_string("hist_file", "", "Landmarks when a model folder has none.")
    with flag_group("data"):
        flags.DEFINE_string("data_root", "", "Dataset folder (default: the first run's test "
                            "split).")
        flags.DEFINE_string("split", "", "With --data_root: the release's split CSV (its test "
                            "part) or a file of subject ids.")
        flags.DEFINE_list("subsets", ["all"], "'all' or subset codes, e.g. T1c,T1c+FLAIR.")
        flags.DEFINE_enum("lesion_protocol", "brats2023", ["brats2023", "brats2024", "none"],
                          "Lesion-wise Dice and HD95 as the BraTS challenge of that year ranks "
                          "them (dilation 3; lesions of at most 50, or 20 and 10 for ET, voxels "
                          "left out), or none.")
        flags.DEFINE_string("cache_dir", "", "Preprocessed-subject cache (default: the run's, "
                            "or <out_dir>/../cache).")
    define_inference_flags()
    define_protocol_flags()
    with flag_group("output"):
        flags.DEFINE_string("out_dir", None, "Output folder.")
        flags.DEFINE_integer("figures", 0, "PNG panels for the first N subjects.")
        flags.DEFINE_list("table_metrics", ["dice"], "Columns of table1.md: dice, dice_pp "
                          "(post-processed), lesion_dice, lesion_dice_pp.")
        flags.DEFINE_bool("overwrite", False, "Replace earlier results in --out_dir.")


def run():
    log = lambda line: print(line, flush=True)  # noqa: E731
    options, weights = protocol_settings()
    markdown = run_evaluation(FLAGS.model, FLAGS.out_dir, options, FLAGS.data_root,
                              FLAGS.split, FLAGS.subsets, FLAGS.cache_dir,
                              FLAGS.hist_file or None, FLAGS.figures, FLAGS.overwrite, log,
                              weights=weights, protocol=FLAGS.protocol,
                              lesion_protocol=FLAGS.lesion_protocol,
                              table_metrics=FLAGS.table_metrics)
    print(markdown, flush=True)
    print(f"wrote {FLAGS.out_dir}/results.csv, summary.json, table1.md", flush=True)


PROGRAM = Program(define_flags, run, ("model", "out_dir"), name="evaluate", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
