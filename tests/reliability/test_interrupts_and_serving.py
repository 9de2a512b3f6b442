"""Fault matrix, interrupts and the serving client: Ctrl-C or SIGTERM stops training cleanly with
the step and how to resume (exit 130) and predict with nothing partial; the serving client says
in one line which server failed and how (refused, deadline, message too large, HTTP error)."""
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

import pytest

from conftest import REPO, tiny_flags
from faults import case_files, partials, refused, Outcome  # noqa: F401

TINY = tiny_flags()


def _wait_for(predicate, proc, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return predicate()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_an_interrupted_training_says_where_it_stopped_and_resumes(tmp_path, signum):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "hved_tf.train", *TINY, "--steps=8", f"--run_dir={run_dir}",
            f"--cache_dir={tmp_path / 'cache'}"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert _wait_for(lambda: list((run_dir / "checkpoints").glob("step_*02.weights.h5")), proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    outcome = Outcome(proc.returncode, out, err)
    line = refused(outcome, 130, "interrupted", "run the same command to resume")
    assert "at step" in line
    assert not partials(run_dir)
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 8


def _big_case(folder):
    """A subject three times the test phantom per axis, so that a signal falls mid-way."""
    import nibabel as nib
    import numpy as np
    from faults import write_nifti_case

    big = {}
    for m, p in write_nifti_case(folder).items():
        img = nib.load(str(p))
        big[m] = folder / f"big_{m.lower()}.nii.gz"
        nib.save(nib.Nifti1Image(np.tile(np.asanyarray(img.dataobj), (3, 3, 3)), img.affine),
                 str(big[m]))
    return big


def _predict_args(tiny_run, out, files):
    return [sys.executable, "-m", "hved_tf.predict", f"--model={tiny_run}", f"--out_dir={out}",
            "--samples=10", "--window=32,32,32", "--overlap=0.5", "--probabilities",
            *[f"--{m.lower()}={p}" for m, p in files.items()]]


def _started(args):
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()             # "model: ..." once the model is loaded
    assert line.startswith(("model:", "evaluating")), line
    time.sleep(1.0)
    return proc


@pytest.mark.slow
def test_an_interrupted_predict_leaves_nothing(tmp_path, tiny_run):
    out = tmp_path / "out"
    proc = _started(_predict_args(tiny_run, out, _big_case(tmp_path / "in")))
    proc.send_signal(signal.SIGINT)
    out_text, err = proc.communicate(timeout=300)
    refused(Outcome(proc.returncode, out_text, err), 130, "nothing partial")
    assert not out.exists() and not partials(tmp_path)


@pytest.mark.slow
def test_a_killed_predict_leaves_no_set_and_the_rerun_cleans_up(tmp_path, tiny_run):
    out = tmp_path / "out"
    files = _big_case(tmp_path / "in")
    proc = _started(_predict_args(tiny_run, out, files))
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()                    # a set is complete or absent, never half
    done = subprocess.run(_predict_args(tiny_run, out, files), cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "report.json").is_file() and not partials(tmp_path)


@pytest.mark.slow
def test_an_interrupted_evaluate_leaves_nothing(tmp_path, tiny_run):
    from hved_tf.data.synthetic import write_phantom_dataset
    write_phantom_dataset(tmp_path / "data", 3, (64, 64, 64), seed=5)
    out = tmp_path / "eval"
    proc = _started([sys.executable, "-m", "hved_tf.evaluate", f"--model={tiny_run}",
                     f"--data_root={tmp_path / 'data'}", f"--out_dir={out}", "--samples=10",
                     "--window=32,32,32", f"--cache_dir={tmp_path / 'cache'}"])
    proc.send_signal(signal.SIGTERM)
    out_text, err = proc.communicate(timeout=300)
    refused(Outcome(proc.returncode, out_text, err), 130, "nothing partial")
    assert not out.exists() and not partials(tmp_path)


def test_training_on_a_full_disk_ends_in_one_line_not_a_crash(tmp_path):
    """h5py writing onto a full disk can crash the process when the file is closed: the
    weights are refused before they are written. Run in a child process, so that a crash
    would show as its exit status rather than end the test session."""
    from faults import _mounted
    disk = tmp_path / "disk"
    with _mounted(disk, "400k"):
        args = [sys.executable, "-m", "hved_tf.train", *TINY, "--steps=2",
                f"--run_dir={disk / 'run'}", f"--cache_dir={tmp_path / 'cache'}"]
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
        outcome = Outcome(done.returncode, done.stdout, done.stderr)
        line = refused(outcome, 2, disk / "run")
        assert "MB free" in line or "No space left" in line
        assert not partials(disk)


# ------------------------------------------------------------------ the serving client
@pytest.fixture(scope="module")
def client():
    from hved_tf.serve_client import PROGRAM
    return PROGRAM


def _call(client, capsys, *args):
    capsys.readouterr()
    code = client.call([str(a) for a in args])
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs(case_files, out):
    return [f"--t1c={case_files['T1c']}", f"--flair={case_files['FLAIR']}", f"--out_dir={out}"]


def _grpc_server(servicer_predict, options=()):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return servicer_predict(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=list(options))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def test_client_against_a_closed_grpc_port(client, capsys, case_files, tmp_path):
    server = f"127.0.0.1:{_closed_port()}"
    outcome = _call(client, capsys, f"--server={server}", "--timeout=5",
                    *_inputs(case_files, tmp_path / "out"))
    line = refused(outcome, 3, server, "cannot reach")
    assert len(line) < 400
    assert not (tmp_path / "out").exists()


def test_client_deadline_exceeded(client, capsys, case_files, tmp_path):
    server, address = _grpc_server(lambda request, context: time.sleep(3))
    try:
        outcome = _call(client, capsys, f"--server={address}", "--timeout=0.5",
                        *_inputs(case_files, tmp_path / "out"))
    finally:
        server.stop(None)
    refused(outcome, 3, address, "did not answer within 0.5 s", "--timeout")
    assert not (tmp_path / "out").exists()


def test_client_message_too_large_for_the_server(client, capsys, case_files, tmp_path):
    server, address = _grpc_server(lambda request, context: None,
                                   options=[("grpc.max_receive_message_length", 1024)])
    try:
        outcome = _call(client, capsys, f"--server={address}", "--timeout=10",
                        *_inputs(case_files, tmp_path / "out"))
    finally:
        server.stop(None)
    refused(outcome, 3, address, "too large")


def test_client_server_error_is_one_line(client, capsys, case_files, tmp_path):
    import grpc

    def fail(request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request: hved")
    server, address = _grpc_server(fail)
    try:
        outcome = _call(client, capsys, f"--server={address}", "--timeout=10",
                        *_inputs(case_files, tmp_path / "out"))
    finally:
        server.stop(None)
    refused(outcome, 3, address, "Servable not found", "--model_name")


def test_client_against_a_closed_rest_port(client, capsys, case_files, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    refused(_call(client, capsys, f"--rest={url}", "--timeout=5",
                  *_inputs(case_files, tmp_path / "out")), 3, url, "cannot reach")


def test_client_rest_http_error_is_one_line(client, capsys, case_files, tmp_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"error": "Servable not found for request: Latest(hved)"})
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        outcome = _call(client, capsys, f"--rest={url}", "--timeout=10",
                        *_inputs(case_files, tmp_path / "out"))
    finally:
        httpd.shutdown()
    refused(outcome, 3, url, "404", "Servable not found")


def test_client_bad_input_is_exit_2(client, capsys, tmp_path):
    missing = tmp_path / "nope.nii.gz"
    refused(_call(client, capsys, "--server=127.0.0.1:1", f"--t1c={missing}",
                  f"--out_dir={tmp_path / 'out'}"), 2, missing)


def test_client_message_limits_fit_a_brats_request():
    from hved_tf.serving.client import MAX_MESSAGE
    brats_request = 240 * 240 * 155 * 4 * 4          # float32 image of four sequences
    brats_reply = 240 * 240 * 155 * (4 + 4 + 3) * 4  # probabilities, recon, three maps
    assert MAX_MESSAGE >= 1.5 * max(brats_request, brats_reply)
