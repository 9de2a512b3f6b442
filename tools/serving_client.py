"""Segment a patient with a model served by TF Serving (gRPC or REST).

    python tools/serving_client.py --server localhost:8500 --model_name hved \\
        --t1c P/t1c.nii.gz --flair P/flair.nii.gz --out_dir out/P
    python tools/serving_client.py --rest http://localhost:8501 ...   # REST instead of gRPC

The client reads the NIfTI files (nibabel), brings them to RAS voxel order, sends the raw
intensities in one `segment_raw` request per patient (the export crops and standardises in its
graph: no preprocessing code or landmarks here), and writes `seg.nii.gz`, `uncertainty.nii.gz`
and `synth_<MODALITY>.nii.gz` for the missing sequences in the input's own geometry, as one
set (into a temporary sibling folder renamed when complete). gRPC message limits are raised to
1 GiB: a BraTS volume is about 140 MB each way.

Exit status: 0 done; 2 bad input (a file, a flag, the output folder); 3 the server could not be
reached or answered with an error (refused connection, deadline, message too large, model not
found, HTTP error), said in one line naming the server.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import socket
import sys
import urllib.error
import urllib.request

import numpy as np

from hved_tf.data.cache import load_subject_image
from hved_tf.io.atomic import atomic_directory
from hved_tf.io.datasets import subject_from_files
from hved_tf.io.nifti import save_nifti
from hved_tf.modalities import MODALITIES
from hved_tf.prediction.app import check_out_dir

MAX_MESSAGE = 1 << 30
SERVER_FAILED = 3


class ServerError(Exception):
    """The server could not be reached or answered with an error (one line, naming it)."""


def _grpc_failure(server, err, timeout):
    """One line for a failed gRPC call: what happened at which server, and what to do."""
    import grpc

    code, details = err.code(), (err.details() or "").strip()
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"cannot reach the TF Serving gRPC server at {server} ({details}); is it "
                "running, and is that its gRPC port (8500 by default)?")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return (f"the server at {server} did not answer within {timeout:g} s; raise --timeout "
                "(a BraTS-size volume takes about 20 s on 2 CPU cores) or check its load.")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return (f"the request or its answer is too large for the server at {server} "
                f"({details}); raise the gRPC message limit of the server or of the proxy "
                "in front of it (TF Serving: --grpc_channel_arguments="
                "grpc.max_receive_message_length=...).")
    hint = (" (check --model_name, and that the export has a segment_raw signature)"
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.FAILED_PRECONDITION) else "")
    return f"the server at {server} answered {code.name}: {details}{hint}."


def _rest_failure(url, err, timeout):
    if isinstance(err, urllib.error.HTTPError):
        try:
            body = json.loads(err.read() or b"{}").get("error", "")
        except ValueError:
            body = ""
        return (f"the REST server at {url} answered HTTP {err.code}: "
                f"{body or err.reason} (check --model_name).")
    reason = getattr(err, "reason", err)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"the REST server at {url} did not answer within {timeout:g} s; raise --timeout."
    return (f"cannot reach the TF Serving REST server at {url} ({reason}); is it running, and "
            "is that its REST port (8501 by default)?")


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
        try:
            response = stub.Predict(build_request(model_name, image, mask), timeout=timeout)
        except grpc.RpcError as err:
            raise ServerError(_grpc_failure(server, err, timeout)) from None
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(url, model_name, image, mask, timeout=600.0):
    """{output name: ndarray} from TF Serving's REST API (columnar "inputs" format)."""
    body = json.dumps({"signature_name": "segment_raw",
                       "inputs": {"image": np.asarray(image).tolist(),
                                  "mask": np.asarray(mask).tolist()}}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model_name}:predict",
                                     data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            outputs = json.loads(reply.read())["outputs"]
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
        raise ServerError(_rest_failure(url, err, timeout)) from None
    return {k: np.asarray(v) for k, v in outputs.items()}


def run(args):
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}.")
    subject = subject_from_files({m: getattr(args, m.lower()) for m in MODALITIES})
    out_dir = pathlib.Path(args.out_dir)
    check_out_dir(out_dir, args.overwrite)
    image, geometries = load_subject_image(subject)          # RAS, missing modalities zeros
    mask = subject.available
    if args.rest:
        out = predict_rest(args.rest, args.model_name, image, mask, args.timeout)
    else:
        out = predict_grpc(args.server, args.model_name, image, mask, args.timeout)

    with atomic_directory(out_dir, replace=args.overwrite) as tmp:
        def write(name, array, kind="image"):
            save_nifti(tmp / name, np.asarray(array), geometries[0], kind=kind)

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
    except ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return SERVER_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
