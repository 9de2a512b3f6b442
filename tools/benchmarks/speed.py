"""Benchmarks that print figures (speed, memory). Not tests: run them by hand.

    python -m tools.benchmarks.speed model [--sizes 64,112] [--models u_hved,u_hemis] [--repeats 5]
    python -m tools.benchmarks.speed data [--subjects 16] [--work_dir DIR] [--patches 128]
        [--spatial_augmentation release|window]
    python -m tools.benchmarks.speed train [--subjects 16] [--work_dir DIR] [--steps 8]
    python -m tools.benchmarks.speed predict [--work_dir DIR] [--samples 10] [--repeats 3] [--window auto]
        [--precision float32|bfloat16|both]
        [--tta]
    python -m tools.benchmarks.speed demo --against TREE [--size 32] [--steps 30] [--repeats 5]
    python -m tools.benchmarks.speed metrics [--repeats 3]

`data`: writes BraTS-size (240x240x155) phantoms, prepares and caches them (crop, Nyul,
whitening), then in a fresh process draws augmented 112³ windows (the paper's recipe: 32 windows
per visit, flips on all axes, ±10% scaling; `release`: per visit of the 10-padded volume, a zoom
per axis with cubic splines, `window`: per window) through the tf.data pipeline: patches per second
and the pipeline process's peak memory, beside a u_hved train step timed in another process of
the same run.

`predict`: one BraTS-size (240x240x155) phantom with all four modalities through
`hved_tf.prediction.app.predict_subject` (u_hved at the release's width, predict's default window
(`--window auto`: the whole cropped volume) or given windows at overlap 0.5, 10 z samples, the four sequences synthesised, uncertainty), in a fresh
process: wall time (median of the repeats after a warm-up run), its split (reading and
preprocessing; encoders and decoders, from the windows' count and the timed encoders of one
window; writing), and the process's peak memory.

`demo`: the demo's training step (u_hved at configs/demo.cfg's 32³ patch and threads, random
data) in fresh processes, alternately with this tree's hved_tf and another checkout's (a
worktree of an earlier commit): medians, their ratio, and the first-step losses of both.

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
import pathlib
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


def step_fixture(name, size):
    """(model compiled with its Adam, image, labels, training batch) on random data, batch 1."""
    import numpy as np
    import tensorflow as tf
    from hved_tf.models import build_model

    model = build_model(name, seed=0)
    model.compile(optimizer=model.default_optimizer(1e-3))
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(size=(1, size, size, size, 4)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 4, size=(1, size, size, size, 1)).astype(np.int32))
    return model, image, labels, ({"image": image, "available": tf.ones((1, 4))}, labels)


def run_one(name, size, repeats):
    """One configuration in this process; returns a dict of figures."""
    import tensorflow as tf

    model, image, labels, data = step_fixture(name, size)
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
    from hved_tf.data.cache import SubjectCache, load_subject_image
    from hved_tf.data.synthetic import write_phantom_dataset
    from hved_tf.io.datasets import discover_subjects
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


def run_data(work_dir, n_subjects, patches, augmentation="release"):
    from hved_tf.config import PipelineConfig
    from hved_tf.data.pipeline import make_training_dataset

    cache, subjects = _data_setup(work_dir, n_subjects)
    prepared = [cache.get(s) for s in subjects]
    config = PipelineConfig(window=(112, 112, 112), windows_per_volume=32, sampler="uniform",
                            batch_size=1, flip_axes=(0, 1, 2), scaling=0.1, seed=0,
                            spatial_augmentation=augmentation,
                            volume_padding=10 if augmentation == "release" else 0)
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
                           str(args.patches), args.spatial_augmentation], capture_output=True,
                          text=True)
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
    print(f"pipeline (--spatial_augmentation={args.spatial_augmentation}): "
          f"{data['patches_per_s']:.2f} augmented 112^3 patches/s "
          f"({data['s_per_patch']:.3f} s/patch, {args.patches} patches, {args.subjects} cached "
          f"240x240x155 subjects), peak RSS {data['peak_rss_gb']:.2f} GB | u_hved train step "
          f"{step['step_s']:.2f} s (median of 3) | patch/step = {ratio:.3f}", flush=True)
    print(f"work dir (phantoms + cache, reusable with --work_dir): {work}")


def run_loop(work_dir, n_subjects, steps, precision):
    """Seconds per step of model.fit over the real pipeline (u_hved, 112³, the paper's recipe)."""
    import keras
    from hved_tf.config import PipelineConfig
    from hved_tf.data.pipeline import make_training_dataset
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
          f" | mixed_bfloat16 step {bf16['step_s']:.2f} s -> "
          f"x{bf16['step_s'] / alone['step_s']:.3f} of float32; medians of "
          f"{args.steps} steps", flush=True)


# The demo's training step, self-contained so that any commit's tree can run it: u_hved at
# configs/demo.cfg's patch, width and threads, its Adam, random data, batch 1.
DEMO_STEP = """
import os, statistics, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(2)
from hved_tf.models import build_model
size, steps = int(sys.argv[1]), int(sys.argv[2])
model = build_model("u_hved", seed=0)
model.compile(optimizer=model.default_optimizer(1e-3))
model.optimizer.build(model.trainable_variables)
rng = np.random.default_rng(0)
image = tf.constant(rng.normal(size=(1, size, size, size, 4)).astype(np.float32))
labels = tf.constant(rng.integers(0, 4, size=(1, size, size, size, 1)).astype(np.int32))
data = ({"image": image, "available": tf.ones((1, 4))}, labels)
step = tf.function(model.train_step)
first = float(step(data)["loss"])
for _ in range(3):
    step(data)["loss"].numpy()
times = []
for _ in range(steps):
    start = time.perf_counter()
    step(data)["loss"].numpy()
    times.append(time.perf_counter() - start)
print(statistics.median(times), repr(first))
"""


def demo_step(tree, size, steps):
    """(median step s, first-step loss) of the demo's step with the hved_tf of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", DEMO_STEP, str(size), str(steps)], env=env,
                          cwd=str(tree), capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"demo step in {tree} failed")
    median, first = proc.stdout.split()[-2:]
    return float(median), float(first)


def cmd_demo(args):
    here = pathlib.Path(__file__).resolve().parents[2]
    trees = {"this tree": here, "--against": pathlib.Path(args.against).resolve()}
    times = {name: [] for name in trees}
    firsts = {}
    for _ in range(args.repeats):              # alternated, so that drift hits both alike
        for name, tree in trees.items():
            median, firsts[name] = demo_step(tree, args.size, args.steps)
            times[name].append(median)
    ours, theirs = (statistics.median(times[n]) for n in trees)
    print(f"demo step (u_hved {args.size}^3, batch 1, 1 thread per op, 2 ops side by side), "
          f"median over {args.repeats} processes of the median of {args.steps} steps:")
    for name, tree in trees.items():
        print(f"  {name:10s} {statistics.median(times[name]):.4f} s  "
              f"({', '.join(f'{t:.4f}' for t in times[name])})  first-step loss "
              f"{firsts[name]!r}  [{tree}]")
    print(f"  ratio this / against: x{ours / theirs:.3f}; first-step losses differ by "
          f"{abs(firsts['this tree'] - firsts['--against']):.3g}", flush=True)


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


def run_predict(work_dir, samples, repeats, window, tta=False, precision="float32"):
    import pathlib
    import shutil

    import numpy as np
    import tensorflow as tf

    from hved_tf.config import InferenceOptions, TrainConfig
    from hved_tf.config.commands import PredictConfig
    from hved_tf.inference.loading import keras_segmenter, load_trained
    from hved_tf.inference.windows import choose_window, plan_windows
    from hved_tf.models import build_model
    from hved_tf.prediction.app import predict_subject

    cache, subjects = _data_setup(work_dir, 1)
    run_dir = pathlib.Path(work_dir) / "predict_run"
    run_dir.mkdir(exist_ok=True)
    TrainConfig(run_dir=str(run_dir)).validate().write(run_dir / "run_config.json")
    build_model("u_hved", seed=0).save_weights(run_dir / "model.weights.h5")
    shutil.copy(pathlib.Path(work_dir) / "hist.txt", run_dir / "hist.txt")
    trained = load_trained(run_dir)
    window = None if window == "auto" else tuple(int(w) for w in window.split(","))
    options = InferenceOptions(window=window, overlap=0.5, blend="gaussian",
                               num_samples=samples, tta=tta, tta_axes=(0, 1, 2),
                               precision=precision)
    out_dir = pathlib.Path(work_dir) / f"predict_out_{precision}"
    segmenter = keras_segmenter(trained, options)
    config = PredictConfig(synth_all=True, overwrite=True)
    reports = [predict_subject(segmenter, subjects[0], out_dir, config)
               for _ in range(repeats + 1)]
    walls = [sum(r["timings"].values()) for r in reports[1:]]
    k = int(np.argsort(walls)[len(walls) // 2])
    report = reports[1:][k]
    box = cache.get(subjects[0]).box
    used = tuple(int(w) for w in choose_window(box.shape, options, 8).numpy())
    windows = plan_windows(box.shape, used, 0, options.overlap, 8).count
    model = segmenter.predictor.model
    encode = tf.function(lambda x: model.encode(x))
    x = tf.random.normal([1, *used, 4])
    encoder_s, _ = _timed(lambda: [t.numpy() for level in encode(x) for t in level], 3)
    timings = report["timings"]
    # The probabilities, for `--precision both` to compare the two precisions.
    seg = segmenter.segment_prepared(cache.get(subjects[0]), np.ones(4))
    np.save(pathlib.Path(work_dir) / f"probabilities_{precision}.npy",
            seg.outputs["probabilities"])
    return {"wall_s": walls[k], "wall_runs_s": walls, "first_run_s": sum(
        reports[0]["timings"].values()), "timings": timings, "windows": windows,
        "cropped_shape": list(box.shape), "window": list(used), "encoders_s": windows * encoder_s,
        "decoders_s": timings["inference_s"] - windows * encoder_s,
        "inference_s": timings["inference_s"], "precision": report["inference"]["precision_used"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def compare_precisions(work):
    """What bfloat16 inference changes against float32 on the benchmark case."""
    import numpy as np

    from hved_tf.evaluation.metrics import region_dice

    p32, p16 = (np.load(pathlib.Path(work) / f"probabilities_{p}.npy")
                for p in ("float32", "bfloat16"))
    diff = np.abs(p32 - p16)
    l32, l16 = p32.argmax(-1), p16.argmax(-1)
    dices = region_dice(l16, l32)
    print(f"bfloat16 against float32: probabilities max |diff| {diff.max():.4f}, 99.9th "
          f"percentile {np.quantile(diff, 0.999):.4f}, mean {diff.mean():.5f}; labels equal at "
          f"{100 * (l32 == l16).mean():.3f}% of voxels; Dice between the two "
          + ", ".join(f"{k} {v:.4f}" for k, v in dices.items()), flush=True)


def cmd_predict(args):
    import tempfile
    work = args.work_dir or tempfile.mkdtemp(prefix="hved_bench_predict_")
    _data_setup(work, 1)
    for precision in (("float32", "bfloat16") if args.precision == "both"
                      else (args.precision,)):
        _print_predict(args, _child(["_predict", work, args.samples, args.repeats, args.window]
                                    + (["tta"] if args.tta else []) + [precision]))
    if args.precision == "both":
        compare_precisions(work)


def _print_predict(args, r):
    t = r["timings"]
    print(f"predict, 240x240x155 phantom (cropped {'x'.join(map(str, r['cropped_shape']))}), "
          f"u_hved, all 4 modalities, {args.samples} z samples, 4 synthesised, uncertainty, "
          f"{r['windows']} window(s) of {'x'.join(map(str, r['window']))} (--window "
          f"{args.window}, overlap 0.5{', mirror TTA over 8 flips' if args.tta else ''}, "
          f"{r['precision']}):\n"
          f"  wall {r['wall_s']:.1f} s (median of {args.repeats}: "
          f"{', '.join(f'{w:.1f}' for w in r['wall_runs_s'])}; first run {r['first_run_s']:.1f} s "
          f"with tracing) | peak RSS {r['peak_rss_gb']:.2f} GB\n"
          f"  read + preprocess {t['load_s'] + t['preprocess_s']:.1f} s | inference "
          f"{r['inference_s']:.1f} s"
          + ("" if args.tta else f" (encoders {r['encoders_s']:.1f} s, decoders and stitching "
                                 f"{r['decoders_s']:.1f} s)")
          + f" | write {t['write_s']:.1f} s", flush=True)


def cmd_metrics(args):
    """Lesion-wise Dice and HD95 of three regions on a BraTS-size phantom's labels against a
    prediction with spurious components (medians of the repeats)."""
    import numpy as np
    from scipy import ndimage

    from hved_tf.data.synthetic import make_phantom
    from hved_tf.evaluation.lesions import region_lesion_metrics
    from hved_tf.evaluation.metrics import region_metrics
    from hved_tf.modalities import to_training_labels

    _, label = make_phantom((240, 240, 155), seed=[0, 1])
    truth = to_training_labels(label, "brats2018")
    blobs = ndimage.gaussian_filter(np.random.default_rng(0).random(truth.shape, np.float32), 1)
    pred = truth.copy()
    pred[blobs > np.quantile(blobs, 0.9995)] = 2
    lesion, _ = _timed(lambda: region_lesion_metrics(pred, truth), args.repeats)
    voxel, _ = _timed(lambda: region_metrics(pred, truth), args.repeats)
    fps = {r: v["false_positives"] for r, v in region_lesion_metrics(pred, truth).items()}
    print(f"240x240x155, three regions, false positives {fps}: lesion-wise Dice and HD95 "
          f"{lesion:.2f} s | voxel-wise Dice, HD95, sensitivity, specificity "
          f"{voxel:.2f} s (medians of {args.repeats})", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_data":
        print(json.dumps(run_data(argv[1], int(argv[2]), int(argv[3]), argv[4])))
        return
    if argv and argv[0] == "_loop":
        print(json.dumps(run_loop(argv[1], int(argv[2]), int(argv[3]), argv[4])))
        return
    if argv and argv[0] == "_predict":
        print(json.dumps(run_predict(argv[1], int(argv[2]), int(argv[3]), argv[4],
                                     "tta" in argv[5:], argv[-1] if argv[-1] in (
                                         "float32", "bfloat16") else "float32")))
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
    p.add_argument("--patches", type=int, default=128)
    p.add_argument("--spatial_augmentation", default="release", choices=("release", "window"),
                   help="release: per-visit cubic zoom and flips of the 10-padded volume; "
                        "window: per-window isotropic zoom and flips")
    p.add_argument("--work_dir", help="reuse phantoms and cache from an earlier run")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("train", help="full loop vs step alone, and mixed_bfloat16 vs float32")
    p.add_argument("--subjects", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--work_dir", help="reuse phantoms and cache from an earlier run")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("predict", help="predict on a BraTS-size phantom: wall time, memory")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--window", default="auto", help="auto (predict's default) or X,Y,Z")
    p.add_argument("--tta", action="store_true", help="mirror TTA over the 8 flips")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "both"),
                   help="--inference_precision; both: one after the other, then compared")
    p.add_argument("--work_dir", help="reuse the phantom and cache from an earlier run")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("demo", help="the demo's train step beside another tree's (a worktree)")
    p.add_argument("--against", required=True, help="a checkout to compare with, e.g. "
                   "`git worktree add /tmp/base <commit>`")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("metrics", help="lesion-wise metrics on a BraTS-size case")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=cmd_metrics)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
