"""Segment a patient with a model served by TF Serving (gRPC or REST):
`hved-serve-client --server localhost:8500 --model_name hved --t1c P/t1c.nii.gz
--flair P/flair.nii.gz --out_dir out/P` (`--rest http://localhost:8501` for REST).

The client reads the NIfTI files (nibabel), brings them to RAS voxel order, sends the raw
intensities and their voxel sizes in one `segment_raw` request per patient (the export
resamples to its model's voxel size, crops and standardises in its graph, and brings the
outputs back: no preprocessing code or landmarks here), and writes `seg.nii.gz`,
`uncertainty.nii.gz` and `synth_<MODALITY>.nii.gz` for the missing sequences in the input's own
geometry, as one set (into a temporary sibling folder renamed when complete).

Exit status: 0 done; 2 bad input (a file, a flag, the output folder); 3 the server could not be
reached or answered with an error (refused connection, deadline, message too large, model not
found, HTTP error), said in one line naming the server.
"""
from __future__ import annotations

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
import pathlib

import numpy as np
from absl import flags

from hved_tf.cli import Program, flag_group
from hved_tf.data.cache import load_subject_image
from hved_tf.io.atomic import atomic_directory
from hved_tf.io.datasets import subject_from_files
from hved_tf.io.nifti import save_nifti
from hved_tf.modalities import MODALITIES
from hved_tf.prediction.app import check_out_dir
from hved_tf.serving.client import SERVER_FAILED, ServerError, predict_grpc, predict_rest

FLAGS = flags.FLAGS


def define_flags():
    with flag_group("the patient"):
        for m in MODALITIES:
            flags.DEFINE_string(m.lower(), "", f"The {m} NIfTI file, if present.")
    with flag_group("the server"):
        flags.DEFINE_string("server", "localhost:8500", "gRPC host:port.")
        flags.DEFINE_string("rest", "", "REST base URL instead, e.g. http://localhost:8501.")
        flags.DEFINE_string("model_name", "hved", "The model's name on the server.")
        flags.DEFINE_float("timeout", 600.0, "Seconds to wait for the answer.")
    with flag_group("output"):
        flags.DEFINE_string("out_dir", None, "Output folder of the patient.")
        flags.DEFINE_bool("overwrite", False, "Replace an earlier set in --out_dir.")


def run():
    if not FLAGS.timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {FLAGS.timeout}.")
    subject = subject_from_files({m: FLAGS[m.lower()].value for m in MODALITIES})
    out_dir = pathlib.Path(FLAGS.out_dir)
    check_out_dir(out_dir, FLAGS.overwrite)
    image, geometries = load_subject_image(subject)          # RAS, missing modalities zeros
    mask = subject.available
    spacing = geometries[0].ras_zooms        # the export resamples to its model's voxel size
    if FLAGS.rest:
        out = predict_rest(FLAGS.rest, FLAGS.model_name, image, mask, spacing=spacing,
                           timeout=FLAGS.timeout)
    else:
        out = predict_grpc(FLAGS.server, FLAGS.model_name, image, mask, spacing=spacing,
                           timeout=FLAGS.timeout)
    with atomic_directory(out_dir, replace=FLAGS.overwrite) as tmp:
        def write(name, array, kind="image"):
            save_nifti(tmp / name, np.asarray(array), geometries[0], kind=kind)

        write("seg.nii.gz", out["seg_labels"], kind="label")
        write("uncertainty.nii.gz", out["uncertainty"])
        recon = np.asarray(out["recon"])
        for i, modality in enumerate(MODALITIES):
            if mask[i] == 0 and np.any(recon[..., i]):
                write(f"synth_{modality}.nii.gz", recon[..., i])
    print(f"{subject.id}: wrote {out_dir}", flush=True)


PROGRAM = Program(define_flags, run, ("out_dir",), exit_codes=((ServerError, SERVER_FAILED),),
                  name="serve_client", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
