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

from absl import flags

from hved_tf.cli import (Program, define_grid_flags, define_inference_flags,
                         define_protocol_flags, flag_group, grid_options, protocol_settings)
from hved_tf.config import CONVENTIONS, PredictConfig
from hved_tf.inference.loading import open_segmenter
from hved_tf.inference.segmenter import corrects_prior
from hved_tf.modalities import MODALITIES
from hved_tf.prediction.app import (check_inputs_first, check_out_dir, predict_all,
                                    subjects_from_inputs)
from hved_tf.progress import Progress

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("model"):
        flags.DEFINE_multi_string("model", None, "A training run folder, a .keras file or an "
                                  "export; repeat for an ensemble (probabilities averaged).")
        flags.DEFINE_string("hist_file", "", "Landmarks (hist.txt) when the model folder has "
                            "none.")
    with flag_group("inputs (one way: modality files, one subject's folder, or a dataset)"):
        for modality in MODALITIES:
            flags.DEFINE_string(modality.lower(), "",
                                f"The {modality} NIfTI file, if the patient has one.")
        flags.DEFINE_string("subject_dir", "", "One subject's folder (any supported layout).")
        flags.DEFINE_string("data_root", "", "A dataset folder: every subject is segmented.")
    define_inference_flags()
    define_grid_flags()
    define_protocol_flags()
    with flag_group("output"):
        flags.DEFINE_string("out_dir", None, "Output folder (one subfolder per subject for a "
                            "dataset).")
        flags.DEFINE_string("label_convention", "", f"{' | '.join(CONVENTIONS)}; default: the "
                            "dataset layout's, brats2018 for files.")
        flags.DEFINE_bool("synth_all", False, "Synthesise all four sequences, not only the "
                          "missing ones.")
        flags.DEFINE_bool("probabilities", False, "Also write prob_<class>.nii.gz.")
        flags.DEFINE_bool("figure", False, "Also write figure.png (three planes through the "
                          "tumour).")
        flags.DEFINE_bool("outputs_on_each_grid", False, "For sequences on different grids: "
                          "also seg_on_<MODALITY>.nii.gz on each input's own grid (the outputs "
                          "lie on the reference grid).")
        flags.DEFINE_bool("overwrite", False, "Replace earlier results in --out_dir.")


def progress_printer(label):
    """A `progress(done, total)` of one subject's windows (`hved_tf.progress.Progress`)."""
    state = {}

    def progress(done, total):
        if state.get("total") != total:
            state.update(total=total, bar=Progress(f"  {label}", total, "windows"))
        state["bar"].update(done)
    return progress


def predict_config(f=FLAGS):
    """The validated PredictConfig of the output and grid flags."""
    return PredictConfig(label_convention=f.label_convention, synth_all=f.synth_all,
                         probabilities=f.probabilities, figure=f.figure, overwrite=f.overwrite,
                         grid=grid_options(f),
                         outputs_on_each_grid=f.outputs_on_each_grid).validate()


def run():
    config = predict_config()
    files = {m: getattr(FLAGS, m.lower()) for m in MODALITIES}
    subjects = subjects_from_inputs(files, FLAGS.subject_dir, FLAGS.data_root)
    check_out_dir(FLAGS.out_dir, FLAGS.overwrite, per_subject_dirs=bool(FLAGS.data_root))
    if not FLAGS.data_root:            # a dataset goes on past a bad subject: checked each
        check_inputs_first(subjects[0], config.grid.reference)
    options, weights = protocol_settings()
    # The sequences are synthesised where predict writes them: the missing ones (all four
    # with --synth_all); with all four present and no --synth_all the image decoders are skipped.
    segmenter = open_segmenter(FLAGS.model, FLAGS.hist_file or None, options, weights,
                               synthesise=True if config.synth_all else "missing")
    for member in segmenter.identity.get("ensemble", ()):
        print(f"ensemble member: {member['model']} from {member['source']}", flush=True)
    print(f"model: {segmenter.identity['model']} from {segmenter.identity['source']}"
          + ("; the training windows' class prior corrected (its class_prior.json; "
             "--noprior_correction: without)" if corrects_prior(segmenter) else ""), flush=True)
    predict_all(segmenter, subjects, FLAGS.out_dir, config,
                per_subject_dirs=bool(FLAGS.data_root), progress_for=progress_printer,
                log=lambda line: print(line, flush=True))


PROGRAM = Program(define_flags, run, ("model", "out_dir"), name="predict", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
