"""Where the time of a training step goes (prints figures; not a test).

    python -m tools.benchmarks.profile [--model u_hved] [--size 112] [--steps 3]
        [--intra 0] [--inter 0] [--precision float32]

One configuration in this process (batch 1, random data, the model's own Adam): the median step
time, then one step under the TensorFlow profiler, split four ways:

- **stage**: the op's name scope (each encoder, the fusion layers, the segmentation decoder, the
  image decoders, the losses, the optimizer), forward and backward (gradient ops live under
  ``gradient_tape/``) apart;
- **op type**: summed time per kind of kernel (convolutions forward and backward, XLA-compiled
  norms and KL, resizes, the rest);
- **busy and idle**: the union of all op intervals over the step's wall time. Ops on two threads
  overlap, so summed op time can exceed the wall time; the idle share is the part of the wall
  time in which no op ran at all (scheduling, Python, waiting);
- the convolutions' share of the summed op time.

The demo's recipe is ``--size 32 --intra 1 --inter 2`` (configs/demo.cfg).
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONV_FORWARD = {"Conv3D", "_MklNativeConv3D", "_MklConv3D"}
CONV_BACKWARD = {"Conv3DBackpropInputV2", "Conv3DBackpropFilterV2",
                 "_MklNativeConv3DBackpropInputV2", "_MklNativeConv3DBackpropFilterV2"}
WRAPPERS = {"Process", "Run", "Start", "Execute", "Await"}
STAGES = (("encoder_", "encoders"), ("fusion_", "fusion"), ("decoder_seg", "decoder (seg)"),
          ("decoder_", "decoders (images)"), ("adam", "optimizer"), ("Adam", "optimizer"))


def op_kind(op_type):
    if op_type in CONV_FORWARD:
        return "Conv3D forward"
    if op_type in CONV_BACKWARD:
        return "Conv3D backward"
    if op_type == "ExecuteAsyncOnStream" or op_type.startswith("__inference"):
        return "XLA (norms, KL)"
    if "Resize" in op_type:
        return "resize"
    return op_type


def stage_of(op_name):
    """(stage, 'forward'|'backward') of a TF op name with its scopes."""
    direction = "backward" if "gradient_tape" in op_name or "/gradients" in op_name \
        else "forward"
    for key, stage in STAGES:
        if key in op_name:
            return stage, direction
    if re.search(r"loss|kl|dice|cross_entropy|weight_decay|recon", op_name, re.I):
        return "losses", direction
    return "other", direction


def union_seconds(intervals):
    total, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1e12


def profile_events(run, log_dir):
    """[(name, op_type, start_ps, duration_ps)] of the TF ops of one profiled call of run()."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(log_dir)
    run()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    path = glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)[0]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name:
                    continue
                op_name, op_type = name.rsplit(":", 1)
                if op_type in WRAPPERS or op_type.lstrip().startswith("__inference_train_step"):
                    continue
                start = line.timestamp_ns * 1000 + event.offset_ps
                events.append((op_name, op_type, start, event.duration_ps))
    return events


def summarise(events):
    kinds, stages, counts = collections.Counter(), collections.Counter(), collections.Counter()
    for name, op_type, _, duration in events:
        seconds = duration / 1e12
        kinds[op_kind(op_type)] += seconds
        counts[op_kind(op_type)] += 1
        stages[stage_of(name)] += seconds
        counts[stage_of(name)] += 1
    intervals = [(start, start + duration) for _, _, start, duration in events]
    span = (max(e for _, e in intervals) - min(s for s, _ in intervals)) / 1e12
    return kinds, stages, counts, union_seconds(intervals), span


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="u_hved")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--intra", type=int, default=0)
    parser.add_argument("--inter", type=int, default=0)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    keras.mixed_precision.set_global_policy(args.precision)
    from tools.benchmarks.speed import _timed, step_fixture

    model, _, _, data = step_fixture(args.model, args.size)
    step = tf.function(model.train_step)
    median, times = _timed(lambda: step(data)["loss"].numpy(), args.steps, warmup=2)
    events = profile_events(lambda: step(data)["loss"].numpy(),
                            tempfile.mkdtemp(prefix="hved_prof_"))
    kinds, stages, counts, busy, span = summarise(events)
    total = sum(kinds.values())
    print(f"{args.model} {args.size}^3, batch 1, {args.precision}, threads intra {args.intra} "
          f"inter {args.inter}: step {median:.3f} s (median of {args.steps}: "
          f"{', '.join(f'{t:.3f}' for t in times)})")
    print(f"profiled step: ops span {span:.3f} s, some op running {busy:.3f} s "
          f"({100 * busy / span:.0f}%), no op running {span - busy:.3f} s "
          f"({100 * (span - busy) / span:.0f}%); summed op time {total:.3f} s over "
          f"{len(events)} ops")
    conv = kinds["Conv3D forward"] + kinds["Conv3D backward"]
    print(f"convolutions: {conv:.3f} s ({100 * conv / total:.0f}% of summed op time)")
    print("\nby op type (summed s, share):")
    for kind, seconds in kinds.most_common(14):
        print(f"  {kind:32s} {seconds:7.3f}  {100 * seconds / total:5.1f}%  {counts[kind]:6d} ops")
    print("\nby stage, forward | backward (summed s, ops):")
    for stage in sorted({s for s, _ in stages}, key=lambda s: -(stages[s, "forward"]
                                                               + stages[s, "backward"])):
        fwd, bwd = (stage, "forward"), (stage, "backward")
        print(f"  {stage:20s} {stages[fwd]:7.3f} ({counts[fwd]:5d}) | "
              f"{stages[bwd]:7.3f} ({counts[bwd]:5d})")


if __name__ == "__main__":
    main()
