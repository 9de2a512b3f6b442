"""The training application end to end on a tiny phantom config."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, tiny_flags
from hved_tf.config import DataConfig, ModelConfig, PipelineConfig, TrainConfig

TINY = tiny_flags(demo_subjects=6, validation_subsets="T1+T1c+T2+FLAIR,T1c")


def _tiny_config(run_dir, steps=4, **kw):
    return TrainConfig(
        data=DataConfig(root="demo", demo_subjects=6, demo_shape=(32, 32, 32),
                        cache_dir=str(pathlib.Path(run_dir).parent / "cache")),
        model=ModelConfig(base_filters=4, levels=3, **kw), run_dir=str(run_dir),
        pipeline=PipelineConfig(window=(32, 32, 32), windows_per_volume=2), steps=steps, validation_every=2,
        validation_subsets=("T1+T1c+T2+FLAIR", "T1c"), keep_checkpoints=2).validate()


def _events(folder):
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


def test_tiny_run_writes_everything(tmp_path):
    from hved_tf.training.app import run
    run_dir = tmp_path / "run"
    config = _tiny_config(run_dir)
    config.log_every = 2
    config.prior_correction = True
    summary = run(config)
    assert summary["steps"] == 4
    assert set(summary["test"]) == {"T1+T1c+T2+FLAIR", "T1c"}
    for name in ("run_config.json", "model.weights.h5", "model.keras", "best.weights.h5",
                 "best.json", "hist.txt", "test_results.json", "split.json", "class_prior.json"):
        assert (run_dir / name).is_file(), name
    # --prior_correction: the weights of the windows' and volumes' class frequencies, used by
    # the test (hved_tf.data.class_prior's numerics: tests/data/test_class_prior.py).
    from hved_tf.data.class_prior import class_weights
    prior = json.loads((run_dir / "class_prior.json").read_text())
    assert prior["weights"] == list(class_weights(prior["volume"], prior["window"]))
    assert list(summary["inference"]["class_weights"]) == prior["weights"]
    assert "class prior corrected" in summary["settings"]
    assert len(list((run_dir / "checkpoints").glob("step_*.weights.h5"))) == 2
    resolved = json.loads((run_dir / "run_config.json").read_text())
    assert resolved["model"]["base_filters"] == 4 and resolved["steps"] == 4
    split = json.loads((run_dir / "split.json").read_text())
    assert sorted(len(v) for v in split.values()) == [1, 1, 4]
    assert not set(split["test"]) & (set(split["train"]) | set(split["validation"]))
    best = json.loads((run_dir / "best.json").read_text())
    assert best["step"] in (2, 4) and 0 <= best["score"] <= 1
    val = _events(run_dir / "logs" / "validation")
    train = _events(run_dir / "logs" / "train")
    val_tags, train_tags = val.Tags()["tensors"], train.Tags()["tensors"]
    assert "dice/T1c/enhancing" in val_tags
    assert {"loss/total", "loss/kl", "loss/recon", "loss/seg_dice", "learning_rate"} \
        <= set(train_tags)
    assert not set(val_tags) & set(train_tags)          # no tag written twice
    # Every scalar on the optimiser step, ending at --steps.
    for acc, tags in ((val, val_tags), (train, train_tags)):
        for tag in tags:
            assert [e.step for e in acc.Tensors(tag)] == [2, 4], tag
    images = [t for t in val_tags if t.startswith("validation/")]
    assert images == ["validation/T1c+FLAIR"]
    image = val.Tensors(images[0])[0].tensor_proto
    assert image.string_val and image.string_val[2].startswith(b"\x89PNG")


def test_nan_loss_stops_with_message_and_keeps_last_backup(tmp_path, monkeypatch):
    import tensorflow as tf
    from hved_tf.training import app as train
    from hved_tf.training.callbacks import NonFiniteLossError
    from hved_tf.data import pipeline

    real = pipeline.make_training_dataset

    def poisoned(subjects, config):
        ds = real(subjects, config).enumerate()

        def poison(i, element):
            x, y = element
            bad = tf.where(i >= 3, np.nan, 0.0)        # from the 4th step on
            return {"image": x["image"] + bad, "available": x["available"]}, y
        return ds.map(poison)

    monkeypatch.setattr(train, "make_training_dataset", poisoned)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="The loss became nan at step"):
        train.run(_tiny_config(run_dir, steps=6))
    backup = list((run_dir / "backup").rglob("*.weights.h5"))
    assert backup, "the backup of the last good epoch is there"
    import h5py
    with h5py.File(backup[0]) as f:
        values = []
        f.visititems(lambda n, o: values.append(o[()]) if isinstance(o, h5py.Dataset) else None)
    assert all(np.all(np.isfinite(v)) for v in values if np.issubdtype(np.asarray(v).dtype,
                                                                       np.floating))


@pytest.mark.slow
def test_sigkill_then_rerun_ends_at_the_same_step(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "hved_tf.train", *TINY, "--steps=8", f"--run_dir={run_dir}",
            f"--cache_dir={tmp_path / 'cache'}"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not list((run_dir / "checkpoints").glob("step_*04.*")):
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "test_results.json").exists()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 8


def test_mixed_float16_on_a_cpu_is_refused(tmp_path):
    import tensorflow as tf
    from hved_tf.training.app import run
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present: mixed_float16 is allowed")
    config = _tiny_config(tmp_path / "run")
    config.precision = "mixed_float16"
    with pytest.raises(ValueError, match="mixed_float16 needs a GPU"):
        run(config)


@pytest.mark.slow   # 50 s; the mirrored step itself is checked in tests/models/test_train_step.py
def test_mirrored_over_two_logical_cpus_runs_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "hved_tf.train", *TINY, "--steps=4", "--strategy=mirrored",
            "--batch_size=2", f"--run_dir={run_dir}", f"--cache_dir={tmp_path / 'cache'}"]
    env = {**os.environ, "HVED_LOGICAL_CPUS": "2"}
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 4
    odd = subprocess.run([*args[:-2], "--batch_size=3", f"--run_dir={tmp_path / 'odd'}",
                          f"--cache_dir={tmp_path / 'cache'}"], cwd=REPO, capture_output=True,
                         text=True, timeout=900, env=env)
    assert odd.returncode == 2 and "does not split over 2 replicas" in odd.stderr


def _free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    """Run by hand: pytest -m slow -k two_workers (two processes, TF_CONFIG on 127.0.0.1)."""
    import h5py

    run_dir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    args = [sys.executable, "-m", "hved_tf.train", *TINY, "--steps=4", "--batch_size=2",
            "--strategy=multi_worker", f"--run_dir={run_dir}",
            f"--cache_dir={tmp_path / 'cache'}"]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert json.loads((run_dir / "test_results.json").read_text())["steps"] == 4
    worker_dir = run_dir / "workers" / "worker_1"
    assert (worker_dir / "backup").is_dir() and not (worker_dir / "logs").exists()
    assert not (run_dir / "workers" / "worker_0").exists()

    def weights(path):
        out = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
        return out

    chief, other = weights(run_dir / "model.weights.h5"), weights(worker_dir / "model.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 50
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
