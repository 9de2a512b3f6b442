"""Segment patients with whatever sequences they have: `python -m hved_tf.predict`.

    python -m hved_tf.predict --model runs/demo --t1c P/t1c.nii.gz --flair P/flair.nii.gz \\
        --out_dir out/P --figure

Inputs: `--t1/--t1c/--t2/--flair` files (any non-empty subset), or `--subject_dir` (one
subject in any supported layout; missing modalities detected from the files present), or
`--data_root` (every subject; one output subfolder each). The model: a training run folder, a
`.keras` file or an export of `hved_tf.export` (run with its own frozen settings). What is
written: `hved_tf.prediction.app`.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)

from hved_tf.cli import Program
from hved_tf.config import PredictConfig
from hved_tf.inference.loading import open_segmenter
from hved_tf.inference.segmenter import corrects_prior
from hved_tf.prediction.app import (check_inputs_first, check_out_dir, predict_all,
                                    subjects_from_inputs)
from hved_tf.progress import Progress
from hved_tf.protocols import protocol_settings


def progress_printer(label):
    """A `progress(done, total)` of one subject's windows (`hved_tf.progress.Progress`)."""
    state = {}

    def progress(done, total):
        if state.get("total") != total:
            state.update(total=total, bar=Progress(f"  {label}", total, "windows"))
        state["bar"].update(done)
    return progress


def run(config):
    subjects = subjects_from_inputs(config.files.by_modality(), config.subject_dir,
                                    config.data_root)
    check_out_dir(config.out_dir, config.overwrite, per_subject_dirs=bool(config.data_root))
    if not config.data_root:            # a dataset goes on past a bad subject: checked each
        check_inputs_first(subjects[0], config.grid.reference)
    options, weights = protocol_settings(config.inference, config.protocol)
    # The sequences are synthesised where predict writes them: the missing ones (all four
    # with --synth_all); with all four present and no --synth_all the image decoders are skipped.
    segmenter = open_segmenter(config.models, config.hist_file or None, options, weights,
                               synthesise=True if config.synth_all else "missing")
    for member in segmenter.identity.get("ensemble", ()):
        print(f"ensemble member: {member['model']} from {member['source']}", flush=True)
    print(f"model: {segmenter.identity['model']} from {segmenter.identity['source']}"
          + ("; the training windows' class prior corrected (its class_prior.json; "
             "--noprior_correction: without)" if corrects_prior(segmenter) else ""), flush=True)
    predict_all(segmenter, subjects, config.out_dir, config,
                per_subject_dirs=bool(config.data_root), progress_for=progress_printer,
                log=lambda line: print(line, flush=True))


PROGRAM = Program(PredictConfig, run, name="predict", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
