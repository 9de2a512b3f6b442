"""Segment a patient with a model served by TF Serving (gRPC or REST).

    python tools/serving_client.py --server localhost:8500 --model_name hved \\
        --t1c P/t1c.nii.gz --flair P/flair.nii.gz --out_dir out/P
    python tools/serving_client.py --rest http://localhost:8501 ...   # REST instead of gRPC

The client reads the NIfTI files (nibabel), brings them to RAS voxel order, sends the raw
intensities in one `segment_raw` request per patient (the export crops and standardises in its
graph: no preprocessing code or landmarks here), and writes `seg.nii.gz`, `uncertainty.nii.gz`
and `synth_<MODALITY>.nii.gz` for the missing sequences in the input's own geometry. gRPC
message limits are raised to 1 GiB: a BraTS volume is about 140 MB each way.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import urllib.request

import numpy as np

from hved_tf.data.cache import load_subject_image
from hved_tf.io.datasets import subject_from_files
from hved_tf.io.nifti import save_nifti
from hved_tf.modalities import MODALITIES
from hved_tf.prediction.app import check_out_dir

MAX_MESSAGE = 1 << 30


def build_request(model_name, image, mask, signature="segment_raw"):
    """A tensorflow-serving-api PredictRequest for one volume (raw intensities for
    `segment_raw`, preprocessed ones for the other signatures)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.asarray(image, np.float32)))
    request.inputs["mask"].CopyFrom(tf.make_tensor_proto(np.asarray(mask, np.float32)))
    return request


def predict_grpc(server, model_name, image, mask, timeout=600.0):
    """{output name: ndarray} from a gRPC PredictionService at `server` (host:port)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(build_request(model_name, image, mask), timeout=timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(url, model_name, image, mask, timeout=600.0):
    """{output name: ndarray} from TF Serving's REST API (columnar "inputs" format)."""
    body = json.dumps({"signature_name": "segment_raw",
                       "inputs": {"image": np.asarray(image).tolist(),
                                  "mask": np.asarray(mask).tolist()}}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model_name}:predict",
                                     data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        outputs = json.loads(reply.read())["outputs"]
    return {k: np.asarray(v) for k, v in outputs.items()}


def run(args):
    subject = subject_from_files({m: getattr(args, m.lower()) for m in MODALITIES})
    out_dir = pathlib.Path(args.out_dir)
    check_out_dir(out_dir, args.overwrite)
    image, geometries = load_subject_image(subject)          # RAS, missing modalities zeros
    mask = subject.available
    if args.rest:
        out = predict_rest(args.rest, args.model_name, image, mask, args.timeout)
    else:
        out = predict_grpc(args.server, args.model_name, image, mask, args.timeout)

    def write(name, array, kind="image"):
        save_nifti(out_dir / name, np.asarray(array), geometries[0], kind=kind)

    write("seg.nii.gz", out["seg_labels"], kind="label")
    write("uncertainty.nii.gz", out["uncertainty"])
    recon = np.asarray(out["recon"])
    for i, modality in enumerate(MODALITIES):
        if mask[i] == 0 and np.any(recon[..., i]):
            write(f"synth_{modality}.nii.gz", recon[..., i])
    print(f"{subject.id}: wrote {out_dir}", flush=True)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for m in ("t1", "t1c", "t2", "flair"):
        parser.add_argument(f"--{m}", default="", help=f"The {m} NIfTI file, if present.")
    parser.add_argument("--server", default="localhost:8500", help="gRPC host:port")
    parser.add_argument("--rest", default="", help="REST base URL, e.g. http://localhost:8501")
    parser.add_argument("--model_name", default="hved")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    try:
        run(parse_args(argv))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
