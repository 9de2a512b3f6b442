"""Latency of each exported signature, measured in a fresh process that imports only
TensorFlow (as TF Serving's runtime would run the graph). Not a test: run it by hand.

    python -m tools.benchmarks.serving [--work_dir DIR] [--repeats 3]

Exports u_hved at the release's width (untrained weights: speed does not depend on them) with
10 z samples, then times, median of the repeats after one warm-up call: `serving_default` and
`segment_volume` on a 112³ input, `segment_volume` on a BraTS-size phantom's preprocessed
volume (240x240x155 cropped to its brain: one window), and `segment_raw` on the same phantom's
raw 240x240x155 volume (crop and intensity chain in the graph).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, statistics, sys, time
import numpy as np
import tensorflow as tf
path, volume_file, raw_file, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
sigs = tf.saved_model.load(path).signatures
load_s = time.perf_counter() - start
def timed(fn):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times), times
rng = np.random.default_rng(0)
cube = tf.constant(rng.normal(size=(112, 112, 112, 4)), tf.float32)
volume = tf.constant(np.load(volume_file))
raw = tf.constant(np.load(raw_file))
ones = tf.ones([4])
out = {"load_s": load_s, "volume_shape": list(volume.shape)}
out["default_112"] = timed(lambda: sigs["serving_default"](image=cube[None], mask=ones[None]))
out["volume_112"] = timed(lambda: sigs["segment_volume"](image=cube, mask=ones))
out["volume_brats"] = timed(lambda: sigs["segment_volume"](image=volume, mask=ones))
out["raw_brats"] = timed(lambda: sigs["segment_raw"](image=raw, mask=ones))
out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
print(json.dumps(out))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="hved_bench_serving_"))
    import time

    import numpy as np
    from tools.benchmarks.speed import _data_setup

    from hved_tf.config import ExportConfig, TrainConfig
    from hved_tf.data.cache import load_subject_image
    from hved_tf.inference.loading import load_trained
    from hved_tf.models import build_model
    from hved_tf.serving.export import export_model

    cache, subjects = _data_setup(work, 1)
    np.save(work / "volume.npy", np.asarray(cache.get(subjects[0]).image))
    np.save(work / "raw.npy", load_subject_image(subjects[0])[0])
    run_dir = work / "serving_run"
    run_dir.mkdir(exist_ok=True)
    TrainConfig(run_dir=str(run_dir)).validate().write(run_dir / "run_config.json")
    build_model("u_hved", seed=0).save_weights(run_dir / "model.weights.h5")
    (run_dir / "hist.txt").write_text((work / "hist.txt").read_text())
    start = time.perf_counter()
    export = export_model(load_trained(run_dir), ExportConfig(export_dir=str(work / "export")))
    export_s = time.perf_counter() - start
    size_mb = sum(f.stat().st_size for f in export.rglob("*") if f.is_file()) / 2 ** 20
    proc = subprocess.run([sys.executable, "-c", CHILD, str(export), str(work / "volume.npy"),
                           str(work / "raw.npy"), str(args.repeats)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("serving benchmark child failed")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    shape = "x".join(map(str, r["volume_shape"][:3]))
    print(f"export (u_hved, 10 samples): {export_s:.0f} s, {size_mb:.1f} MB; fresh-process load "
          f"{r['load_s']:.1f} s; medians of {args.repeats} after a warm-up call:\n"
          f"  serving_default 112^3: {r['default_112'][0]:.2f} s | segment_volume 112^3: "
          f"{r['volume_112'][0]:.2f} s | segment_volume BraTS-size ({shape} cropped from "
          f"240x240x155): {r['volume_brats'][0]:.2f} s | segment_raw 240x240x155 raw: "
          f"{r['raw_brats'][0]:.2f} s | peak RSS {r['peak_rss_gb']:.2f} GB",
          flush=True)


if __name__ == "__main__":
    main()
