"""Export a trained model for TF Serving: `python -m hved_tf.export --model M --export_dir D`.

The signatures, what they take and return, and how an export is written and checked:
`hved_tf.serving.export`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import time

from absl import flags

from hved_tf.cli import Program, define_inference_flags, flag_group, inference_options
from hved_tf.config import CONVENTIONS
from hved_tf.inference.loading import load_trained
from hved_tf.serving.export import SIGNATURES, export_model, export_target

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("model"):
        flags.DEFINE_string("model", None, "A training run folder or a .keras file.")
        flags.DEFINE_string("hist_file", "", "Landmarks (hist.txt) when the model folder has "
                            "none.")
    define_inference_flags("Default z samples (serving_default, segment_volume, segment_raw).")
    with flag_group("output"):
        flags.DEFINE_string("export_dir", None, "The model's base folder, e.g. models/hved.")
        flags.DEFINE_integer("version", None, "Version folder (default: one more than the "
                             "last).")
        flags.DEFINE_enum("label_convention", "brats2018", list(CONVENTIONS),
                          "Label values of seg_labels.")


def run():
    start = time.time()
    options = inference_options()
    if options.precision != "float32":
        raise ValueError("Exports are float32 (TF Serving runs them on any hardware): drop "
                         "--inference_precision, or use it with predict and evaluate.")
    export_target(FLAGS.export_dir, FLAGS.version)          # refused before the long work
    trained = load_trained(FLAGS.model, FLAGS.hist_file or None)
    path = export_model(trained, FLAGS.export_dir, FLAGS.version, FLAGS.label_convention,
                        options=options)
    mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20
    print(f"exported {trained.name} to {path} ({mb:.1f} MB, {time.time() - start:.0f} s); "
          f"signatures: {', '.join(SIGNATURES)}"
          + ("; the run's prior correction (class_prior.json) is in its graph, "
             "--noprior_correction to leave it out" if trained.class_weights
             and options.prior_correction else ""), flush=True)


PROGRAM = Program(define_flags, run, ("model", "export_dir"), name="export", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
