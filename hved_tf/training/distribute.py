"""The tf.distribute side of a training run: the strategy, this process's role in it, and its
CPU threads."""
from __future__ import annotations

import logging
import os

import tensorflow as tf

LOG = logging.getLogger("hved_tf")


def set_cpu_threads(intra_op, inter_op):
    """TensorFlow's thread pools: `intra_op` threads within one op, `inter_op` ops side by side
    (0 leaves TensorFlow's choice, the number of cores). Call before TensorFlow runs any op; in
    a process where it already has, a differing setting is said in a warning and left out.

    On 2 CPU cores U-HVED's 32^3 step (four encoders of small convolutions) took 0.14 s with
    (1, 2) against 0.17-0.18 s with TensorFlow's (2, 2) alone (tools/benchmarks/speed.py model), and
    0.14 s against 0.19 s a step in the demo's training loop (configs/demo.cfg).
    """
    threading = tf.config.threading
    for name, value, getter, setter in (
            ("intra_op_threads", intra_op, threading.get_intra_op_parallelism_threads,
             threading.set_intra_op_parallelism_threads),
            ("inter_op_threads", inter_op, threading.get_inter_op_parallelism_threads,
             threading.set_inter_op_parallelism_threads)):
        if not value or getter() == value:
            continue
        try:
            setter(value)
        except RuntimeError:
            LOG.warning("--%s=%d left out: TensorFlow already runs in this process with its "
                        "threads set (it takes them at its start).", name, value)


def make_strategy(name):
    """The tf.distribute strategy; call before TensorFlow runs any op.

    `mirrored` uses every visible GPU; on a machine without one, HVED_LOGICAL_CPUS=N splits the
    CPU into N logical devices (for tests and for trying the distributed path on a laptop).
    """
    if name == "mirrored":
        logical = int(os.environ.get("HVED_LOGICAL_CPUS", "0") or 0)
        if logical > 1 and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical)])
            return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(logical)])
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_role(strategy):
    """(is_chief, task name, worker index, worker count) of this process. A single process is
    the chief; in a multi-worker cluster (TF_CONFIG) the "chief" task is, or worker 0 when the
    cluster has none."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True, "chief", 0, 1
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in cluster
    chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
    index = 0 if task_type == "chief" else task_id + int(has_chief)
    count = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return chief, f"{task_type}_{task_id}", index, count


def unsharded(dataset):
    """A dataset each worker draws from on its own (seeded by its index): there are no files to
    shard, and index-sharding an infinite stream would make every worker read it all."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def check_precision(precision):
    if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        raise ValueError("--precision=mixed_float16 needs a GPU (TensorFlow's CPU kernels have "
                         "no float16 3-D pooling); on a CPU use mixed_bfloat16.")
