"""Whether two training runs are the same run: every weight array, every training-loss point
TensorBoard holds and the test figures, compared exactly (a refactor that changes no
behaviour leaves all three bit-identical).

    python -m tools.dev.compare_runs RUN_A RUN_B

Make the two runs with the same flags from two checkouts, e.g. (the main job, 3 steps):

    git worktree add /tmp/before <commit>
    (cd /tmp/before && PYTHONPATH=. python -m hved_tf.train --flagfile configs/demo.cfg \\
        --steps=3 --validation_every=3 --log_every=1 --run_dir=/tmp/runs/before)
    python -m hved_tf.train --flagfile configs/demo.cfg --steps=3 --validation_every=3 \\
        --log_every=1 --run_dir=/tmp/runs/after
    python -m tools.dev.compare_runs /tmp/runs/before /tmp/runs/after

Exit status 0 when everything is equal, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import h5py
import numpy as np


def weight_arrays(path):
    """{dataset name: array} of a .weights.h5 file."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def loss_points(run):
    """{tag: [(step, value)]} of the training losses in a run's TensorBoard logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    points = {}
    for events in sorted((pathlib.Path(run) / "logs" / "train").glob("events*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if "loss" in value.tag:
                    number = (tf.make_ndarray(value.tensor).item() if value.HasField("tensor")
                              else value.simple_value)
                    points.setdefault(value.tag, []).append((event.step, number))
    return points


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args(argv)
    a, b = pathlib.Path(args.run_a), pathlib.Path(args.run_b)
    wa, wb = weight_arrays(a / "model.weights.h5"), weight_arrays(b / "model.weights.h5")
    same_weights = wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    print(f"weights: {len(wa)} and {len(wb)} arrays, "
          f"{'bit-identical' if same_weights else 'DIFFERENT'}")
    la, lb = loss_points(a), loss_points(b)
    for tag in sorted(set(la) | set(lb)):
        same = la.get(tag) == lb.get(tag)
        print(f"{tag}: {'equal' if same else 'DIFFERENT'} "
              f"{[f'{v!r}' for _, v in la.get(tag, [])]}"
              + ("" if same else f" against {[f'{v!r}' for _, v in lb.get(tag, [])]}"))
    ta = json.loads((a / "test_results.json").read_text())["test"]
    tb = json.loads((b / "test_results.json").read_text())["test"]
    print(f"test figures: {'equal' if ta == tb else 'DIFFERENT'}")
    return 0 if same_weights and la == lb and ta == tb else 1


if __name__ == "__main__":
    sys.exit(main())
