"""Preparation at scale: subjects per second with 1 and 2 worker processes, bytes per subject in
float16 and float32, peak memory. Not a test: run it by hand.

    python -m tools.benchmarks.prepare [--subjects 100] [--work_dir DIR] [--workers 1,2]

Writes `--subjects` BraTS-size (240x240x155) phantoms once into the work folder (reused by later
runs), trains landmarks on four of them, then for each worker count prepares every subject into
an empty cache (float16, the default) in a fresh process, so that each figure is its own: wall
time, subjects per second, the parent's and the largest worker's peak resident memory; and
prepares four subjects in float32 to compare the bytes of an entry.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _setup(work, n):
    from hved_tf.data.cache import load_subject_image
    from hved_tf.data.synthetic import write_phantom_dataset
    from hved_tf.io.datasets import discover_subjects
    from hved_tf.preprocessing.histogram import train_landmarks, write_niftynet_landmarks

    raw = work / "raw"
    if len(list(raw.glob("*/*_seg.nii.gz"))) < n:
        start = time.perf_counter()
        shutil.rmtree(raw, ignore_errors=True)
        write_phantom_dataset(raw, n, (240, 240, 155), seed=0, layout="brats2020")
        print(f"wrote {n} BraTS-size phantoms in {time.perf_counter() - start:.0f} s",
              flush=True)
    hist = work / "hist.txt"
    if not hist.is_file():
        subjects = discover_subjects(raw)
        write_niftynet_landmarks(hist, train_landmarks(
            load_subject_image(s)[0] for s in subjects[:4]))


def _entry_bytes(entry):
    return sum(p.stat().st_size for p in entry.iterdir())


def run_prepare(work, n, workers, dtype):
    """In a fresh process: prepares the first n subjects into an empty cache."""
    from hved_tf.data.cache import SubjectCache
    from hved_tf.io.datasets import discover_subjects
    from hved_tf.preprocessing.histogram import read_niftynet_landmarks

    subjects = discover_subjects(work / "raw")[:n]
    folder = work / f"cache_{dtype}_{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    cache = SubjectCache(folder, read_niftynet_landmarks(work / "hist.txt"), dtype=dtype)
    start = time.perf_counter()
    cache.prepare_all(subjects, workers=workers)
    wall = time.perf_counter() - start
    sizes = [_entry_bytes(cache.entry(s)) for s in subjects]
    shutil.rmtree(folder)
    return {"wall_s": wall, "subjects": n, "workers": workers, "dtype": dtype,
            "bytes_per_subject": statistics.median(sizes),
            "parent_peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
            "worker_peak_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2}


def _child(*args):
    proc = subprocess.run([sys.executable, __file__, "_child", *map(str, args)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("benchmark child failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        work, n, workers, dtype = argv[1:]
        print(json.dumps(run_prepare(pathlib.Path(work), int(n), int(workers), dtype)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--work_dir", default="")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="hved_bench_prepare_"))
    work.mkdir(parents=True, exist_ok=True)
    _setup(work, args.subjects)
    results = [_child(work, args.subjects, int(w), "float16") for w in args.workers.split(",")]
    full = _child(work, min(4, args.subjects), 1, "float32")
    base = results[0]["subjects"] / results[0]["wall_s"]
    print(f"prepare {args.subjects} BraTS-size phantoms (240x240x155, 4 sequences + label; "
          "crop, Nyul, whitening, class indices) into an empty cache:")
    for r in results:
        rate = r["subjects"] / r["wall_s"]
        print(f"  {r['workers']} worker(s): {r['wall_s']:.0f} s, {rate:.2f} subjects/s "
              f"(x{rate / base:.2f} of 1 worker) | peak RSS: parent {r['parent_peak_gb']:.2f} "
              f"GB, largest worker {r['worker_peak_gb']:.2f} GB", flush=True)
    half = results[0]["bytes_per_subject"]
    print(f"  bytes per subject: float16 {half / 1e6:.1f} MB, float32 "
          f"{full['bytes_per_subject'] / 1e6:.1f} MB (x{half / full['bytes_per_subject']:.2f}; "
          "image, label and class indices)")


if __name__ == "__main__":
    main()
