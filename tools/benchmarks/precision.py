"""Where the time of a mixed_bfloat16 training step goes, beside float32 (prints figures).

    python -m tools.benchmarks.precision [--size 112] [--steps 5]

For u_hved at size³ (batch 1, random data), float32 and mixed_bfloat16, each in a fresh process:

- the median time of the training step (the benchmark of record for the ratio stays
  `python -m tools.benchmarks.speed train`; this tool explains it);
- the summed op time by kind, from one profiled step (TF profiler): Conv3D forward and
  backward, the XLA-compiled code (fused norms and KL), and the rest. Op times overlap
  (two threads), so they explain the step without adding up to it;
- the same model with the norms as plain autodiff ops ("plain_norm", what inference runs),
  to measure what the fused training norms (hved_tf/models/norm_act.py) save;
- two ablations, to bound what any work outside the convolutions can gain: the same step with
  every instance norm replaced by its affine part (no statistics, not the model), then also
  without the KL term. Their ratio is a floor for the ratio of the real step.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = ("model", "plain_norm", "no_norm_stats", "no_norm_stats_no_kl")
KINDS = {"_MklNativeConv3D": "conv forward", "_MklNativeConv3DBackpropInputV2": "conv backward",
         "_MklNativeConv3DBackpropFilterV2": "conv backward", "Conv3D": "conv forward",
         "Conv3DBackpropInputV2": "conv backward", "Conv3DBackpropFilterV2": "conv backward"}
WRAPPERS = {"Process", "Run", "Start", "Execute", "Await"}


def _ablate(variant):
    """Patches the model code for an ablation (this process only)."""
    import tensorflow as tf
    from hved_tf import losses
    from hved_tf.models import blocks, ops

    if variant == "plain_norm":
        def plain(self, x, training=None):
            return self.conv(ops.leaky_relu(self.norm(x)))
        blocks.ConvUnit.call = plain
    if variant in ("no_norm_stats", "no_norm_stats_no_kl"):
        def affine_only(self, x, training=None):
            gamma = tf.cast(self.norm.gamma, x.dtype)
            beta = tf.cast(self.norm.beta, x.dtype)
            return self.conv(ops.leaky_relu(x * gamma + beta))
        blocks.ConvUnit.call = affine_only
    if variant == "no_norm_stats_no_kl":
        losses.kl_loss = lambda means, *args, **kwargs: tf.add_n(
            [0.0 * tf.reduce_mean(tf.cast(m, tf.float32)) for m in means])


def op_times(step, data, log_dir):
    """{kind: seconds} summed over the ops of one profiled call of step(data)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(log_dir)
    step(data)["loss"].numpy()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    path = glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)[0]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    kinds = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                seconds = event.duration_ps / 1e12
                if ":" not in name:
                    continue
                op_type = name.rsplit(":", 1)[1]
                if op_type == "ExecuteAsyncOnStream":
                    kinds["XLA (norms, KL)"] += seconds
                elif op_type not in WRAPPERS and not op_type.startswith(" __inference"):
                    kinds[KINDS.get(op_type, "other ops")] += seconds
    return dict(kinds)


def run_child(precision, variant, size, steps):
    import keras
    import tensorflow as tf

    from tools.benchmarks.speed import _timed, step_fixture

    keras.mixed_precision.set_global_policy(precision)
    _ablate(variant)
    model, _, _, data = step_fixture("u_hved", size)
    step = tf.function(model.train_step)
    median, times = _timed(lambda: step(data)["loss"].numpy(), steps, warmup=2)
    kinds = op_times(step, data, tempfile.mkdtemp(prefix="hved_prof_")) if variant == "model" \
        else {}
    return {"step_s": median, "times": times, "op_s": kinds}


def _child(args):
    proc = subprocess.run([sys.executable, __file__, "_child", *map(str, args)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"benchmark child {args} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        print(json.dumps(run_child(argv[1], argv[2], int(argv[3]), int(argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    results = {}
    for variant in VARIANTS:
        for precision in ("float32", "mixed_bfloat16"):
            results[variant, precision] = r = _child([precision, variant, args.size, args.steps])
            print(f"{variant:20s} {precision:15s} step {r['step_s']:.2f} s (median of "
                  f"{args.steps}: {', '.join(f'{t:.2f}' for t in r['times'])})", flush=True)
    print(f"\nu_hved {args.size}^3, batch 1: step time, mixed_bfloat16 / float32")
    for variant in VARIANTS:
        f32, bf16 = (results[variant, p]["step_s"] for p in ("float32", "mixed_bfloat16"))
        print(f"  {variant:20s} float32 {f32:.2f} s | bf16 {bf16:.2f} s | x{bf16 / f32:.3f}")
    print("summed op time of one profiled step of the model (s; ops overlap on 2 threads):")
    f32, bf16 = (results["model", p]["op_s"] for p in ("float32", "mixed_bfloat16"))
    for kind in sorted(set(f32) | set(bf16), key=lambda k: -f32.get(k, 0.0)):
        a, b = f32.get(kind, 0.0), bf16.get(kind, 0.0)
        ratio = b / a if a else float("nan")
        print(f"  {kind:16s} float32 {a:6.2f} | bf16 {b:6.2f} | x{ratio:.2f}")


if __name__ == "__main__":
    main()
