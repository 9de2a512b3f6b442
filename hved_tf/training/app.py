"""The training application (the library behind `python -m hved_tf.train`).

`run(config)` runs the paper's recipe from one `TrainConfig`: data preparation (cached), the
tf.data pipeline, the model's own train_step under Keras `fit`, validation with TensorBoard
scalars and images, the best weights, backups to resume after a crash or a kill
(`BackupAndRestore` at every validation: re-running the same command continues from the last
one, with the step count, optimiser state and lr schedule), and at the end `model.weights.h5`
and `model.keras` in the run folder plus the test-split Dice (`final_test_options`:
validation's settings with `--test_samples` z draws, or the release's protocol). With
`--prior_correction`, validation and the test use the class weights `class_prior` measures.

Steps are counted as in the original: a Keras "epoch" is only the validation cadence, and
`StopAtStep` ends the run after exactly `steps` optimiser steps, resumed or not.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time

import keras

from hved_tf.config import ModelFacts, TrainConfig
from hved_tf.protocols import describe_inference, protocol_options
from hved_tf.data.class_prior import CLASS_PRIOR_FILE, measure as measure_class_prior
from hved_tf.data.pipeline import make_training_dataset
from hved_tf.data.prepare import SPLIT_FILE, prepare_data
from hved_tf.errors import Interrupted
from hved_tf.inference.segmenter import KerasSegmenter
from hved_tf.io.atomic import OutputError, atomic_path, check_writable, write_json
from hved_tf.modalities import SUBSET_CODES
from hved_tf.models import build_model
from hved_tf.progress import Progress
from hved_tf.training.callbacks import (NonFiniteLoss, StopAtStep, Validation, enhancing_by_t1c,
                                       mean_scores, subject_scores)
from hved_tf.training.checkpoints import (AtomicBackupAndRestore, StepCheckpoints,
                                          check_room_for_run, save_weights)
from hved_tf.training.monitor import TrainingLog
from hved_tf.training.quality_record import read_record, standing
from hved_tf.training.distribute import (check_precision, make_strategy, set_cpu_threads,
                                         unsharded, worker_role)

IDENTITY_KEYS = ("name", "subset", "base_filters", "levels")


def check_run_dir(run_dir, config):
    """Refuses a run folder that is a file, cannot be written, or holds another model's run
    (before any data is prepared); creates it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"--run_dir {run_dir} is a file; give a folder.")
    check_writable(run_dir)
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


def _save_final(model, run_dir):
    save_weights(model, run_dir / "model.weights.h5")
    with atomic_path(run_dir / "model.keras") as tmp:
        model.save(tmp)


POLY_POWER = 0.9


def learning_rate_schedule(optim):
    """"step": the rate times the factor every N steps, the U-HeMIS code's rule (the released
    U-HVED code's 1e-3 / 4^int(n / 10) underflows within 100 steps and overflows at 5,120: it
    cannot have trained its checkpoint); "constant": the rate the released U-HeMIS graph
    holds; "poly": the rate times (1 - step / lr_decay_steps)^0.9, zero from lr_decay_steps on
    (nnU-Net's rule; on the demo it did not beat "step": docs/experiments/2026-12-demo-tuning.md)."""
    if optim.lr_schedule == "constant":
        return optim.learning_rate
    if optim.lr_schedule == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            optim.learning_rate, optim.lr_decay_steps, end_learning_rate=0.0, power=POLY_POWER)
    return keras.optimizers.schedules.ExponentialDecay(
        optim.learning_rate, optim.lr_decay_steps, optim.lr_decay_factor, staircase=True)


def _build(config, strategy):
    with strategy.scope():
        model = build_model(config.model.name, loss_weights=config.optim.loss,
                            **config.model.build_options())
        schedule = learning_rate_schedule(config.optim)
        model.compile(optimizer=model.default_optimizer(schedule, config.optim.ema_momentum))
    return model


def _callbacks(config, data, run_dir, own_dir, chief, weights=()):
    callbacks = [NonFiniteLoss(), StopAtStep(config.steps)]
    if chief:
        facts = ModelFacts(patch=config.patch, class_weights=tuple(weights))
        callbacks += [
            TrainingLog(run_dir / "logs" / "train", config.steps, config.log_every),
            Validation(data["validation"] or data["train"][:2], config.validation_subsets,
                       config.validation, run_dir, patience=config.early_stopping_patience,
                       facts=facts),
            StepCheckpoints(run_dir, config.keep_checkpoints)]
    # Last: it saves the epoch's backup after the callbacks above have run.
    callbacks.append(AtomicBackupAndRestore(
        str(own_dir / "backup"), checkpoints=run_dir / "checkpoints" if chief else None,
        steps_per_epoch=config.validation_every, steps=config.steps, delete_checkpoint=False))
    return callbacks


def final_test_options(config):
    """The end-of-training test's InferenceOptions: validation's, with `config.test_samples` z
    samples averaged, then `config.test_protocol`'s (the release's "original" replaces them)."""
    return protocol_options(config.test_protocol, dataclasses.replace(
        config.validation, num_samples=config.test_samples))


def class_prior(config, data, run_dir, chief):
    """The prior correction's class weights: () without `--prior_correction`; else measured on
    the training subjects and their windows (`hved_tf.data.class_prior`), written by the chief
    to <run_dir>/class_prior.json, where evaluate, predict and export find them. Without the
    flag a class_prior.json left by an earlier run in the folder is removed."""
    path = run_dir / CLASS_PRIOR_FILE
    if not config.prior_correction:
        if chief:
            path.unlink(missing_ok=True)
        return ()
    pipeline = dataclasses.replace(config.pipeline, seed=config.model.seed)
    prior = measure_class_prior(data["train"], pipeline)
    if chief:
        write_json(path, prior)
    print("prior correction (the windows' class frequencies against the volumes'): weights "
          + ", ".join(f"{w:.3g}" for w in prior["weights"]) + f" ({path.name})", flush=True)
    return tuple(prior["weights"])


def _test(model, config, data, run_dir, steps, start, class_weights=()):
    """Scores the test split (`final_test_options(config)` with the best validated weights, or
    the release's protocol with the final ones); writes test_results.json."""
    original = config.test_protocol == "original"
    best = run_dir / "best.weights.h5"
    if best.is_file() and not original:
        # The file also holds the optimiser state of that moment, hence `steps` read before.
        model.load_weights(best)
    weights = best.name if best.is_file() and not original else "model.weights.h5"
    options = final_test_options(config)
    facts = ModelFacts(patch=config.patch, class_weights=tuple(class_weights))
    segmenter = KerasSegmenter(model, options, synthesise=False, facts=facts)
    scores = subject_scores(segmenter, data["test"], config.test_subsets or
                            config.validation_subsets)
    results = mean_scores(scores)
    by_t1c = enhancing_by_t1c(scores, data["test"])
    settings = describe_inference(options, facts)
    summary = {"steps": steps, "test": results, "enhancing_by_t1c": by_t1c,
               "seconds": time.time() - start,
               "weights": weights, "subjects": [s.id for s in data["test"]],
               "protocol": config.test_protocol,
               "inference": {**dataclasses.asdict(options), "training_patch": list(facts.patch),
                             "class_weights": list(segmenter.class_weights)},
               "settings": settings}
    write_json(run_dir / "test_results.json", summary)
    print(f"test Dice of {len(data['test'])} held-out subjects ({config.test_protocol} "
          f"protocol: {weights}; {settings}; evaluate uses its own --protocol/--window/"
          "--samples, written in its summary.json):", flush=True)
    for code, regions in results.items():
        print(f"  {code}: " + ", ".join(f"{r} {v:.3f}" for r, v in regions.items()),
              flush=True)
    if by_t1c:
        print(f"  enhancing tumour, {by_t1c['subjects']} subjects with one: Dice "
              f"{by_t1c['with_t1c']:.3f} over the subsets with T1c, {by_t1c['without_t1c']:.3f} "
              f"without (T1c adds {by_t1c['gap']:+.3f})", flush=True)
    wt_all4 = results.get(SUBSET_CODES[-1], {}).get("whole_tumour")      # all four
    for line in standing(config.to_dict(), len(data["test"]), wt_all4,
                         by_t1c["gap"] if by_t1c else None, record=read_record()):
        print(line, flush=True)
    return summary


def _report_skipped(skipped, run_dir):
    """Lists the subjects left out (also in <run_dir>/skipped_subjects.json)."""
    path = run_dir / "skipped_subjects.json"
    if not skipped:
        path.unlink(missing_ok=True)
        return
    write_json(path, skipped)
    print(f"skipped {len(skipped)} subject(s) (listed in {path}): "
          + ", ".join(f"{s['id']} ({s['stage']})" for s in skipped), flush=True)


def finished(run_dir, config):
    """The test summary of a run folder that has trained all of `config.steps`, else None."""
    path = run_dir / "test_results.json"
    if not path.is_file() or not (run_dir / "model.weights.h5").is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        return summary if int(summary["steps"]) >= config.steps else None
    except (ValueError, KeyError, TypeError):
        return None                       # damaged: the run is finished again


def prepare(config, run_dir, chief, start):
    progress = Progress("  prepared", 1, "subjects", start=start, rate=True)

    def show(i, n, sid):
        progress.total = n
        progress.update(i)

    data = prepare_data(config.data, run_dir, seed=config.model.seed, progress=show)
    print(f"data: {len(data['train'])} training, {len(data['validation'])} validation, "
          f"{len(data['test'])} test subjects ({time.time() - start:.0f} s)", flush=True)
    if chief:
        _report_skipped(data["skipped"], run_dir)
        write_json(run_dir / SPLIT_FILE, {part: [s.id for s in data[part]]
                                          for part in ("train", "validation", "test")})
    return data


def _fit(model, dataset, config, data, run_dir, own_dir, chief, weights=()):
    try:
        model.fit(dataset, epochs=math.ceil(config.steps / config.validation_every),
                  steps_per_epoch=config.validation_every,
                  callbacks=_callbacks(config, data, run_dir, own_dir, chief=chief,
                                       weights=weights),
                  verbose=0, shuffle=False)      # progress: TrainingLog; the data is shuffled
    except KeyboardInterrupt:
        step = int(model.optimizer.iterations.numpy())
        kept = step // config.validation_every * config.validation_every
        raise Interrupted(f"at step {step} of {config.steps}; the last backup is at step "
                          f"{kept}: run the same command to resume from it.") from None
    return int(model.optimizer.iterations.numpy())


def _retest(config, run_dir, summary, start):
    """The test figures of a finished run computed again (nothing else is written)."""
    print(f"{run_dir}: finished at step {summary['steps']}; computing the test figures again",
          flush=True)
    data = prepare(config, run_dir, True, start)
    weights = class_prior(config, data, run_dir, True)
    model = _build(config, make_strategy("default"))
    model.load_weights(run_dir / "model.weights.h5")
    return _test(model, config, data, run_dir, steps=int(summary["steps"]), start=start,
                 class_weights=weights)


def run(config: TrainConfig, retest=False):
    """Trains as configured (or, for a finished run, does nothing unless `retest`); returns
    the test-split results."""
    start = time.time()
    run_dir = pathlib.Path(config.run_dir)
    done = finished(run_dir, config) if run_dir.is_dir() else None
    if done and not retest:
        print(f"{run_dir} is already complete ({done['steps']} steps); nothing to do "
              "(--retest computes the test figures again; a larger --steps trains further).",
              flush=True)
        return done
    if retest and not done:
        raise ValueError(f"--retest is for a finished run, and {run_dir} has not finished "
                         f"{config.steps} steps: run without --retest to train it.")
    set_cpu_threads(config.intra_op_threads, config.inter_op_threads)
    check_run_dir(run_dir, config)
    check_precision(config.precision)
    keras.mixed_precision.set_global_policy(config.precision)
    if retest:
        return _retest(config, run_dir, done, start)
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
    if config.pipeline.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"--batch_size={config.pipeline.batch_size} does not split over "
                         f"{strategy.num_replicas_in_sync} replicas; use a multiple of it.")
    data = prepare(config, run_dir, chief, start)
    weights = class_prior(config, data, run_dir, chief)
    pipeline = dataclasses.replace(config.pipeline, seed=config.model.seed + 1000 * index)
    dataset = make_training_dataset(data["train"], pipeline)
    if workers > 1:
        dataset = unsharded(dataset)
    model = _build(config, strategy)
    check_room_for_run(model, own_dir, config.keep_checkpoints if chief else 0)
    steps = _fit(model, dataset, config, data, run_dir=run_dir, own_dir=own_dir, chief=chief,
                 weights=weights)
    if not chief:
        save_weights(model, own_dir / "model.weights.h5")
        print(f"{worker} done after {steps} steps ({time.time() - start:.0f} s)", flush=True)
        return {"steps": steps, "worker": worker}
    _save_final(model, run_dir)
    summary = _test(model, config, data, run_dir, steps=steps, start=start, class_weights=weights)
    print(f"done in {time.time() - start:.0f} s: {run_dir}", flush=True)
    return summary
