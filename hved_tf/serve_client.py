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
import dataclasses
import pathlib

import numpy as np

from hved_tf.cli import Program
from hved_tf.config import ModalityFiles
from hved_tf.data.cache import load_subject_image
from hved_tf.io.atomic import atomic_directory
from hved_tf.io.datasets import subject_from_files
from hved_tf.io.nifti import save_nifti
from hved_tf.modalities import MODALITIES
from hved_tf.prediction.app import check_out_dir
from hved_tf.serving.client import SERVER_FAILED, ServerError, predict_grpc, predict_rest
from hved_tf.settings import check_fields, section, setting

_SERVER = "the server"


def _seconds(name, value):
    if not value > 0:
        raise ValueError(f"--{name} must be a positive number of seconds, got {value}.")


@dataclasses.dataclass(frozen=True)
class ServeClientConfig:
    """`hved-serve-client`: the patient's files, the server, the output folder."""
    files: ModalityFiles = section(ModalityFiles, "the patient")
    server: str = setting("localhost:8500", "gRPC host:port.", group=_SERVER)
    rest: str = setting("", "REST base URL instead, e.g. http://localhost:8501.",
                        group=_SERVER)
    model_name: str = setting("hved", "The model's name on the server.", group=_SERVER)
    timeout: float = setting(600.0, "Seconds to wait for the answer.", check=_seconds,
                             group=_SERVER)
    out_dir: str = setting("", "Output folder of the patient.", required=True, group="output")
    overwrite: bool = setting(False, "Replace an earlier set in --out_dir.", group="output")

    def validate(self):
        check_fields(self)
        return self


def run(config):
    subject = subject_from_files(config.files.by_modality())
    out_dir = pathlib.Path(config.out_dir)
    check_out_dir(out_dir, config.overwrite)
    image, geometries = load_subject_image(subject)          # RAS, missing modalities zeros
    mask = subject.available
    spacing = geometries[0].ras_zooms        # the export resamples to its model's voxel size
    if config.rest:
        out = predict_rest(config.rest, config.model_name, image, mask, spacing=spacing,
                           timeout=config.timeout)
    else:
        out = predict_grpc(config.server, config.model_name, image, mask, spacing=spacing,
                           timeout=config.timeout)
    with atomic_directory(out_dir, replace=config.overwrite) as tmp:
        def write(name, array, kind="image"):
            save_nifti(tmp / name, np.asarray(array), geometries[0], kind=kind)

        write("seg.nii.gz", out["seg_labels"], kind="label")
        write("uncertainty.nii.gz", out["uncertainty"])
        recon = np.asarray(out["recon"])
        for i, modality in enumerate(MODALITIES):
            if mask[i] == 0 and np.any(recon[..., i]):
                write(f"synth_{modality}.nii.gz", recon[..., i])
    print(f"{subject.id}: wrote {out_dir}", flush=True)


PROGRAM = Program(ServeClientConfig, run, exit_codes=((ServerError, SERVER_FAILED),),
                  name="serve_client", doc=__doc__)

if __name__ == "__main__":
    PROGRAM.main()
