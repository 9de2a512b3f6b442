"""Regenerate the documentation's example figures from a trained run (the demo's by default).

    python -m tools.figures.examples [--run runs/demo] [--out docs/figures]

Writes, from the run's first held-out test subject:
- `predict_figure.png`: `hved_tf.predict --figure` with T1c and FLAIR only (T1 and T2
  synthesised);
- `evaluate_subject.png` and `evaluate_table1.png`: `hved_tf.evaluate --figures 1` (the
  subject with T1c and FLAIR, and Table 1 at a glance over the 15 subsets and the test split);
- `tensorboard_validation.png`: the last validation image the run wrote to TensorBoard.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys
import tempfile

from hved_tf import quiet  # noqa: F401  (first: TensorFlow starts without its banner)
from hved_tf.config import EvaluateConfig, InferenceOptions, PredictConfig, TrainConfig
from hved_tf.data.prepare import SPLIT_FILE, demo_root, default_cache_dir
from hved_tf.evaluation.app import run_evaluation
from hved_tf.inference.loading import keras_segmenter, load_trained
from hved_tf.io.datasets import discover_subjects
from hved_tf.prediction.app import predict_subject

OPTIONS = InferenceOptions(num_samples=10)


def first_test_subject(run_dir):
    config = TrainConfig.from_dict(json.loads((run_dir / "run_config.json").read_text()))
    cache = pathlib.Path(config.data.cache_dir or default_cache_dir(run_dir))
    root = (demo_root(config.data, cache, config.model.seed) if config.data.root == "demo"
            else pathlib.Path(config.data.root))
    test_ids = json.loads((run_dir / SPLIT_FILE).read_text())["test"]
    return next(s for s in discover_subjects(root) if s.id == test_ids[0])


def tensorboard_image(run_dir, out):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run_dir / "logs" / "validation"),
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = [t for t in acc.Tags()["tensors"] if t.startswith("validation/")]
    if not tags:
        return None
    event = acc.Tensors(tags[0])[-1]
    out.write_bytes(event.tensor_proto.string_val[2])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args(argv)
    run_dir, out = pathlib.Path(args.run), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subject = first_test_subject(run_dir)
    two = dataclasses.replace(subject, label_path=None,
                              paths={m: p for m, p in subject.paths.items()
                                     if m in ("T1c", "FLAIR")})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        segmenter = keras_segmenter(load_trained(run_dir), OPTIONS)
        predict_subject(segmenter, two, tmp / "predict", PredictConfig(figure=True))
        shutil.copy(tmp / "predict" / "figure.png", out / "predict_figure.png")
        run_evaluation(EvaluateConfig(out_dir=str(tmp / "evaluate"), models=(str(run_dir),),
                                      figures=1, inference=OPTIONS))
        shutil.copy(tmp / "evaluate" / "table1.png", out / "evaluate_table1.png")
        subject_png = next((tmp / "evaluate" / "figures").rglob(f"*_T1c+FLAIR.png"))
        shutil.copy(subject_png, out / "evaluate_subject.png")
    tensorboard_image(run_dir, out / "tensorboard_validation.png")
    for path in sorted(out.glob("*.png")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
