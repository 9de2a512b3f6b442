"""Benchmarks that print figures (speed, memory). Not tests: run them by hand.

    python tools/benchmark.py model [--sizes 64,112] [--models u_hved,u_hemis] [--repeats 5]
    python tools/benchmark.py data [--subjects 16] [--work_dir DIR] [--patches 64]
    python tools/benchmark.py train [--subjects 16] [--work_dir DIR] [--steps 8]

`data`: writes BraTS-size (240x240x155) phantoms, prepares and caches them (crop, Nyul,
whitening), then in a fresh process draws augmented 112³ windows (the paper's recipe: 32 windows
per visit, flips on all axes, ±10% scaling) through the tf.data pipeline: patches per second
and the pipeline process's peak memory, beside a u_hved train step timed in another process of
the same run.

`model`: for each model and patch size (batch 1), in a fresh process each (so that peak memory is
that configuration's own): median train-step time, median forward time, peak resident memory,
and the step's GFLOP/s, counting convolutions only (2·k³·Cin·Cout per output voxel, read off the
Conv3D ops of the traced training forward pass; a training step = 3x forward). Beside them, in
the same process and run, the GFLOP/s of a single 3x3x3 Conv3D with 32 channels at 56³, the
reference the step is compared with.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _timed(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def conv_flops(graph):
    """Convolution FLOPs of the Conv3D/Conv2D ops of a graph (multiply-adds x 2)."""
    total = 0
    for op in graph.get_operations():
        if op.type not in ("Conv3D", "Conv2D"):
            continue
        kernel = op.inputs[1].shape.as_list()       # [k.., Cin, Cout]
        out = op.outputs[0].shape.as_list()          # [B, .., Cout]
        per_voxel = 2
        for d in kernel[:-1]:
            per_voxel *= d
        voxels = 1
        for d in out[:-1]:
            voxels *= d
        total += per_voxel * voxels * kernel[-1]
    return total


def reference_conv_gflops(repeats):
    import tensorflow as tf
    x = tf.random.normal((1, 56, 56, 56, 32))
    w = tf.random.normal((3, 3, 3, 32, 32))
    fn = tf.function(lambda: tf.nn.conv3d(x, w, [1] * 5, "SAME"))
    median, _ = _timed(lambda: fn().numpy(), repeats, warmup=2)
    flops = 2 * 27 * 32 * 32 * 56 ** 3
    return flops / median / 1e9, median


def run_one(name, size, repeats):
    """One configuration in this process; returns a dict of figures."""
    import numpy as np
    import tensorflow as tf
    from hved_tf.models import build_model

    model = build_model(name, seed=0)
    model.compile(optimizer=model.default_optimizer(1e-3))
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(size=(1, size, size, size, 4)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 4, size=(1, size, size, size, 1)).astype(np.int32))
    data = ({"image": image, "available": tf.ones((1, 4))}, labels)
    mask = tf.ones((1, 4))

    loss_fwd = tf.function(lambda: model.compute_loss_terms(image, labels, mask, mask, True))
    flops_forward = conv_flops(loss_fwd.get_concrete_function().graph)
    step = tf.function(model.train_step)
    start = time.perf_counter()
    step(data)
    first = time.perf_counter() - start
    step_median, step_times = _timed(lambda: step(data)["loss"].numpy(), repeats)
    infer = tf.function(lambda: model({"image": image, "mask": mask}, training=False)["seg_logits"])
    fwd_median, _ = _timed(lambda: infer().numpy(), repeats)
    ref_gflops, ref_time = reference_conv_gflops(max(repeats, 5))
    step_gflops = 3 * flops_forward / step_median / 1e9
    return {
        "model": name, "size": size, "first_step_s": first, "step_s": step_median,
        "step_times_s": step_times, "forward_s": fwd_median,
        "train_forward_gflop": flops_forward / 1e9, "step_gflop": 3 * flops_forward / 1e9,
        "step_gflops": step_gflops, "ref_conv_gflops": ref_gflops, "ref_conv_s": ref_time,
        "ratio_to_ref": step_gflops / ref_gflops,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
    }


def _data_setup(work_dir, n_subjects):
    """Phantoms and their cache under work_dir (reused when already there)."""
    import pathlib
    from hved_tf.data.synthetic import write_phantom_dataset
    from hved_tf.io.datasets import discover_subjects
    from hved_tf.preprocessing.cache import SubjectCache, load_subject_image
    from hved_tf.preprocessing.histogram import (read_niftynet_landmarks, train_landmarks,
                                                 write_niftynet_landmarks)

    work = pathlib.Path(work_dir)
    raw = work / "raw"
    if len(list(raw.glob("*/*_seg.nii.gz"))) < n_subjects:
        start = time.perf_counter()
        write_phantom_dataset(raw, n_subjects, (240, 240, 155), seed=0, layout="brats2020")
        print(f"wrote {n_subjects} phantoms in {time.perf_counter() - start:.0f} s", flush=True)
    subjects = discover_subjects(raw)[:n_subjects]
    hist = work / "hist.txt"
    if not hist.is_file():
        images = [load_subject_image(s)[0] for s in subjects[:4]]
        write_niftynet_landmarks(hist, train_landmarks(images))
    cache = SubjectCache(work / "cache", read_niftynet_landmarks(hist))
    start = time.perf_counter()
    cache.prepare_all(subjects)
    print(f"cache ready ({n_subjects} subjects) after {time.perf_counter() - start:.0f} s",
          flush=True)
    return cache, subjects


def run_data(work_dir, n_subjects, patches):
    from hved_tf.data.pipeline import PipelineConfig, make_training_dataset

    cache, subjects = _data_setup(work_dir, n_subjects)
    prepared = [cache.get(s) for s in subjects]
    config = PipelineConfig(window=(112, 112, 112), windows_per_volume=32, sampler="uniform",
                            batch_size=1, flip_axes=(0, 1, 2), scaling=0.1, seed=0)
    it = iter(make_training_dataset(prepared, config))
    for _ in range(8):
        next(it)
    start = time.perf_counter()
    for _ in range(patches):
        x, y = next(it)
        x["image"].numpy()
    elapsed = time.perf_counter() - start
    return {"patches_per_s": patches / elapsed, "s_per_patch": elapsed / patches,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def cmd_data(args):
    import tempfile
    work = args.work_dir or tempfile.mkdtemp(prefix="hved_bench_data_")
    _data_setup(work, args.subjects)       # in this process: phantoms and cache, once
    proc = subprocess.run([sys.executable, __file__, "_data", work, str(args.subjects),
                           str(args.patches)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("data benchmark failed")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    proc = subprocess.run([sys.executable, __file__, "_one", "u_hved", "112", "3"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("train-step benchmark failed")
    step = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = data["s_per_patch"] / step["step_s"]
    print(f"pipeline: {data['patches_per_s']:.2f} augmented 112^3 patches/s "
          f"({data['s_per_patch']:.3f} s/patch, {args.patches} patches, {args.subjects} cached "
          f"240x240x155 subjects), peak RSS {data['peak_rss_gb']:.2f} GB | u_hved train step "
          f"{step['step_s']:.2f} s (median of 3) | patch/step = {ratio:.3f} "
          f"(target < 0.5)", flush=True)
    print(f"work dir (phantoms + cache, reusable with --work_dir): {work}")


def run_loop(work_dir, n_subjects, steps, precision):
    """Seconds per step of model.fit over the real pipeline (u_hved, 112³, the paper's recipe)."""
    import keras
    from hved_tf.data.pipeline import PipelineConfig, make_training_dataset
    from hved_tf.models import build_model

    keras.mixed_precision.set_global_policy(precision)
    cache, subjects = _data_setup(work_dir, n_subjects)
    prepared = [cache.get(s) for s in subjects]
    config = PipelineConfig(window=(112, 112, 112), windows_per_volume=32, sampler="uniform",
                            flip_axes=(0, 1, 2), scaling=0.1, seed=0)
    model = build_model("u_hved", seed=0)
    model.compile(optimizer=model.default_optimizer(1e-3))
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(make_training_dataset(prepared, config), epochs=1, steps_per_epoch=steps + 2,
              callbacks=[Timer()], verbose=0)
    return {"loop_step_s": statistics.median(times[2:]), "times": times}


def _child(args):
    proc = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"benchmark child {args[0]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cmd_train(args):
    import tempfile
    work = args.work_dir or tempfile.mkdtemp(prefix="hved_bench_data_")
    _data_setup(work, args.subjects)
    alone = _child(["_one", "u_hved", 112, args.steps])
    loop = _child(["_loop", work, args.subjects, args.steps, "float32"])
    bf16 = _child(["_one_bf16", "u_hved", 112, args.steps])
    print(f"u_hved 112^3, batch 1: step alone {alone['step_s']:.2f} s | full loop (pipeline + "
          f"step, fit) {loop['loop_step_s']:.2f} s -> x{loop['loop_step_s'] / alone['step_s']:.3f}"
          f" (target <= 1.10) | mixed_bfloat16 step {bf16['step_s']:.2f} s -> "
          f"x{bf16['step_s'] / alone['step_s']:.3f} of float32 (target <= 0.6); medians of "
          f"{args.steps} steps", flush=True)


def cmd_model(args):
    rows = []
    for name in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            proc = subprocess.run(
                [sys.executable, __file__, "_one", name, str(size), str(args.repeats)],
                capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"benchmark of {name} at {size}^3 failed")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:8s} {size:4d}^3  step {row['step_s']:.3f} s (median of {args.repeats}; "
                  f"first {row['first_step_s']:.1f} s)  forward {row['forward_s']:.3f} s  "
                  f"peak RSS {row['peak_rss_gb']:.2f} GB  step {row['step_gflop']:.1f} GFLOP "
                  f"-> {row['step_gflops']:.1f} GFLOP/s  | Conv3D 32ch 56^3 "
                  f"{row['ref_conv_gflops']:.1f} GFLOP/s  | ratio {100 * row['ratio_to_ref']:.0f}%",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_data":
        print(json.dumps(run_data(argv[1], int(argv[2]), int(argv[3]))))
        return
    if argv and argv[0] == "_loop":
        print(json.dumps(run_loop(argv[1], int(argv[2]), int(argv[3]), argv[4])))
        return
    if argv and argv[0] == "_one_bf16":
        import keras
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        print(json.dumps(run_one(argv[1], int(argv[2]), int(argv[3]))))
        return
    if argv and argv[0] == "_one":
        name, size, repeats = argv[1], int(argv[2]), int(argv[3])
        print(json.dumps(run_one(name, size, repeats)))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("model", help="train step / forward time, memory, GFLOP/s per model")
    p.add_argument("--models", default="u_hved,u_hemis")
    p.add_argument("--sizes", default="64,112")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_model)
    p = sub.add_parser("data", help="augmented patches per second from cached BraTS-size phantoms")
    p.add_argument("--subjects", type=int, default=16)
    p.add_argument("--patches", type=int, default=64)
    p.add_argument("--work_dir", help="reuse phantoms and cache from an earlier run")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("train", help="full loop vs step alone, and mixed_bfloat16 vs float32")
    p.add_argument("--subjects", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--work_dir", help="reuse phantoms and cache from an earlier run")
    p.set_defaults(func=cmd_train)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
