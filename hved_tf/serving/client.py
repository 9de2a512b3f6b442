"""A client of TF Serving for this package's exports: one `segment_raw` request per patient,
over gRPC (`predict_grpc`, Google's tensorflow-serving-api protos and stubs) or REST
(`predict_rest`, TF Serving's columnar JSON). Failures become `ServerError` with one line
naming the server and what to do. gRPC message limits are raised to 1 GiB: a BraTS volume is
about 140 MB each way. The command is `hved_tf.serve_client` (`hved-serve-client`).
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf

try:                                           # the [serving] extra
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
except ImportError:                            # pragma: no cover - said when used
    grpc = predict_pb2 = prediction_service_pb2_grpc = None

MAX_MESSAGE = 1 << 30
SERVER_FAILED = 3


class ServerError(Exception):
    """The server could not be reached or answered with an error (one line, naming it)."""


def _grpc_failure(server, err, timeout):
    """One line for a failed gRPC call: what happened at which server, and what to do."""
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


def build_request(model_name, image, mask, signature="segment_raw", spacing=None):
    """A tensorflow-serving-api PredictRequest for one volume (raw intensities for
    `segment_raw`, with their voxel sizes `spacing` in mm; preprocessed ones for the other
    signatures)."""
    _require_serving_api()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(np.asarray(image, np.float32)))
    request.inputs["mask"].CopyFrom(tf.make_tensor_proto(np.asarray(mask, np.float32)))
    if spacing is not None:
        request.inputs["spacing"].CopyFrom(tf.make_tensor_proto(np.asarray(spacing, np.float32)))
    return request


def predict_grpc(server, model_name, image, mask, spacing, timeout=600.0):
    """{output name: ndarray} from `segment_raw` of a gRPC PredictionService at `server`
    (host:port), for a raw RAS `image` of voxel sizes `spacing` (mm)."""
    _require_serving_api()
    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(build_request(model_name, image, mask, spacing=spacing),
                                    timeout=timeout)
        except grpc.RpcError as err:
            raise ServerError(_grpc_failure(server, err, timeout)) from None
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(url, model_name, image, mask, spacing, timeout=600.0):
    """{output name: ndarray} from `segment_raw` through TF Serving's REST API (columnar
    "inputs" format), for a raw RAS `image` of voxel sizes `spacing` (mm)."""
    body = json.dumps({"signature_name": "segment_raw",
                       "inputs": {"image": np.asarray(image).tolist(),
                                  "mask": np.asarray(mask).tolist(),
                                  "spacing": [float(v) for v in spacing]}}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model_name}:predict",
                                     data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            outputs = json.loads(reply.read())["outputs"]
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
        raise ServerError(_rest_failure(url, err, timeout)) from None
    return {k: np.asarray(v) for k, v in outputs.items()}


def _require_serving_api():
    if grpc is None:
        raise ValueError("The gRPC client needs tensorflow-serving-api: pip install "
                         "'hved_tf[serving]' (or use --rest).")
