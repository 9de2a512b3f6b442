"""Training application: `python -m hved_tf.train --flagfile configs/brats18.cfg`.

Runs the paper's recipe from one flagfile (flags in hved_tf/flags.py, their table in the
README): data preparation (cached), the tf.data pipeline, the model's own train_step under Keras
`fit`, validation with TensorBoard scalars and images, the best weights, backups to resume
after a crash or a kill (`BackupAndRestore` at every validation: re-running the same command
continues from the last one, with the step count, optimiser state and lr schedule), and at the
end `model.weights.h5` and `model.keras` in the run folder plus the test-split Dice.

Steps are counted as in the original: a Keras "epoch" is only the validation cadence, and
`StopAtStep` ends the run after exactly `--steps` optimiser steps, resumed or not.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pathlib
import sys
import time

from absl import app

from hved_tf import flags as hv_flags
from hved_tf.config import TrainConfig

log = logging.getLogger("hved_tf.train")
IDENTITY_KEYS = ("name", "subset", "base_filters", "levels")


def check_run_dir(run_dir, config):
    """Refuses a run folder that holds another model's run."""
    previous = run_dir / "run_config.json"
    if not previous.is_file():
        return
    try:
        old = json.loads(previous.read_text())["model"]
    except (ValueError, KeyError):
        raise ValueError(f"{previous} is not a readable run config; use another --run_dir.")
    new = config.to_dict()["model"]
    diff = [k for k in IDENTITY_KEYS if old.get(k) != new.get(k)]
    if diff:
        raise ValueError(
            f"--run_dir {run_dir} holds the checkpoints of another model ("
            + ", ".join(f"{k}={old.get(k)!r}" for k in diff) + "); this run asks for "
            + ", ".join(f"{k}={new.get(k)!r}" for k in diff) + ". Use another --run_dir.")


def make_strategy(name):
    """The tf.distribute strategy; call before TensorFlow runs any op.

    `mirrored` uses every visible GPU; on a machine without one, HVED_LOGICAL_CPUS=N splits the
    CPU into N logical devices (for tests and for trying the distributed path on a laptop).
    """
    import tensorflow as tf
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


def _save_final(model, run_dir):
    for name, save in (("model.weights.h5", model.save_weights), ("model.keras", model.save)):
        suffix = ".weights.h5" if name.endswith(".weights.h5") else ".keras"
        tmp = run_dir / f".{name}.partial{suffix}"
        save(tmp)
        os.replace(tmp, run_dir / name)


def run(config: TrainConfig):
    """Trains as configured; returns the test-split results."""
    import keras

    from hved_tf.callbacks import (AtomicBackupAndRestore, NonFiniteLoss, StepCheckpoints,
                                   StopAtStep, Validation, evaluate_subjects)
    from hved_tf.data.pipeline import PipelineConfig, make_training_dataset
    from hved_tf.data.prepare import prepare_data
    from hved_tf.models import build_model

    start = time.time()
    run_dir = pathlib.Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(run_dir, config)
    strategy = make_strategy(config.strategy)
    chief, worker, index, workers = worker_role(strategy)
    # Keras 3's callbacks know nothing of multi-worker runs (tf.keras 2's did): every worker
    # would write the same TensorBoard events, checkpoints and backup files. So only the chief
    # writes into the run folder; every other worker keeps its own backup (synchronous training
    # makes it identical to the chief's, and a resumed worker needs one to restore from) and its
    # final weights under <run_dir>/workers/<task>/.
    own_dir = run_dir if chief else run_dir / "workers" / worker
    own_dir.mkdir(parents=True, exist_ok=True)
    if chief:
        config.write(run_dir / "run_config.json")
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"--batch_size={config.batch_size} does not split over "
                         f"{strategy.num_replicas_in_sync} replicas; use a multiple of it.")
    if config.precision == "mixed_float16":
        import tensorflow as tf
        if not tf.config.list_physical_devices("GPU"):
            raise ValueError("--precision=mixed_float16 needs a GPU (TensorFlow's CPU kernels "
                             "have no float16 3-D pooling); on a CPU use mixed_bfloat16.")
    keras.mixed_precision.set_global_policy(config.precision)

    def progress(i, n, sid):
        if i == n or i % 10 == 0:
            print(f"  prepared {i}/{n} subjects ({time.time() - start:.0f} s)", flush=True)

    data = prepare_data(config.data, run_dir, seed=config.model.seed, progress=progress)
    print(f"data: {len(data['train'])} training, {len(data['validation'])} validation, "
          f"{len(data['test'])} test subjects ({time.time() - start:.0f} s)", flush=True)
    pipeline = PipelineConfig(
        window=config.patch, windows_per_volume=config.windows_per_volume,
        sampler=config.sampler, batch_size=config.batch_size, flip_axes=config.flip_axes,
        rotation_degrees=config.rotation_degrees, scaling=config.scaling,
        seed=config.model.seed + 1000 * index)
    dataset = make_training_dataset(data["train"], pipeline)
    if workers > 1:
        # Each worker draws its own windows (seeded by its index) from an infinite stream:
        # there are no files to shard, and index-sharding would make every worker read all.
        import tensorflow as tf
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
        dataset = dataset.with_options(options)
    with strategy.scope():
        model = build_model(config.model.name, loss_weights=config.optim.loss_weights(),
                            **config.model.build_options())
        schedule = keras.optimizers.schedules.ExponentialDecay(
            config.optim.learning_rate, config.optim.lr_decay_steps,
            config.optim.lr_decay_factor, staircase=True)
        model.compile(optimizer=model.default_optimizer(schedule))
    callbacks = [NonFiniteLoss(), StopAtStep(config.steps)]
    if chief:
        callbacks += [
            Validation(data["validation"] or data["train"][:2], config.validation_subsets,
                       config.patch, run_dir, config.early_stopping_patience),
            StepCheckpoints(run_dir, config.keep_checkpoints),
            keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch",
                                        write_graph=False)]
    # Last: it saves the epoch's backup after the callbacks above have run.
    callbacks.append(AtomicBackupAndRestore(str(own_dir / "backup"), delete_checkpoint=False))
    epochs = math.ceil(config.steps / config.validation_every)
    model.fit(dataset, epochs=epochs, steps_per_epoch=config.validation_every,
              callbacks=callbacks, verbose=1 if sys.stdout.isatty() and chief else 2)
    steps = int(model.optimizer.iterations.numpy())
    if not chief:
        model.save_weights(own_dir / "model.weights.h5")
        print(f"{worker} done after {steps} steps ({time.time() - start:.0f} s)", flush=True)
        return {"steps": steps, "worker": worker}
    _save_final(model, run_dir)
    if (run_dir / "best.weights.h5").is_file():
        # The test split is scored with the best validated weights (the file also holds the
        # optimiser state of that moment, hence `steps` read above).
        model.load_weights(run_dir / "best.weights.h5")
    results = evaluate_subjects(model, data["test"], config.validation_subsets, config.patch)
    summary = {"steps": steps, "test": results, "seconds": time.time() - start,
               "weights": "best.weights.h5" if (run_dir / "best.weights.h5").is_file()
               else "model.weights.h5"}
    (run_dir / "test_results.json").write_text(json.dumps(summary, indent=1))
    for code, regions in results.items():
        print(f"test Dice ({len(data['test'])} held-out subjects, {code}): "
              + ", ".join(f"{r} {v:.3f}" for r, v in regions.items()), flush=True)
    print(f"done in {time.time() - start:.0f} s: {run_dir}", flush=True)
    return summary


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = hv_flags.config_from_flags()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from hved_tf.callbacks import NonFiniteLossError
    try:
        run(config)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
