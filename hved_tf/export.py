"""Export a trained model for TF Serving: `python -m hved_tf.export --model M --export_dir D`.

The signatures, what they take and return, and how an export is written and checked:
`hved_tf.serving.export`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import time

from hved_tf.cli import Program
from hved_tf.config import ExportConfig
from hved_tf.inference.loading import load_trained
from hved_tf.serving.export import SIGNATURES, export_model, export_target


def run(config):
    start = time.time()
    export_target(config.export_dir, config.version)          # refused before the long work
    trained = load_trained(config.model, config.hist_file or None)
    path = export_model(trained, config)
    mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20
    print(f"exported {trained.name} to {path} ({mb:.1f} MB, {time.time() - start:.0f} s); "
          f"signatures: {', '.join(SIGNATURES)}"
          + ("; the run's prior correction (class_prior.json) is in its graph, "
             "--noprior_correction to leave it out" if trained.class_weights
             and config.inference.prior_correction else ""), flush=True)


PROGRAM = Program(ExportConfig, run, name="export", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
