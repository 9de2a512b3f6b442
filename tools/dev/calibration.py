"""Does a trained run over- or under-segment the whole tumour? For each test subject of a run
folder (its test split, drawn again from its run_config.json as training drew it), with all
four sequences and the settings of the run's end-of-training test (its --test_protocol and
--test_samples, and the weights that test used): the true and predicted whole-tumour volumes
(voxels) and the WT Dice of the argmax and of "P(tumour) > t" for a few thresholds t, then the
means.

    python -m tools.dev.calibration RUN_DIR [--thresholds 0.5,0.7,0.9] [--cache_dir DIR]

A model whose argmax predicts more tumour voxels than the truth in most subjects, and whose Dice
rises with t, is over-confident about tumour at the borders (what the demo's short runs show).
This is a diagnosis, not a post-processing: the main job and `evaluate` keep the argmax.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib

import numpy as np



def _segmenter(run_dir, config):
    from hved_tf.inference.loading import keras_segmenter, load_trained
    from hved_tf.protocols import protocol_weights
    from hved_tf.training.app import final_test_options

    model = load_trained(str(run_dir), weights=protocol_weights(config.test_protocol))
    return keras_segmenter(model, final_test_options(config), synthesise=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--thresholds", default="0.5,0.7,0.9")
    parser.add_argument("--cache_dir", help="the preprocessed-subject cache (default: the run's)")
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    if not all(0 < t < 1 for t in thresholds):
        parser.error(f"--thresholds must lie in (0, 1), got {args.thresholds}.")
    run_dir = pathlib.Path(args.run_dir)
    if not (run_dir / "run_config.json").is_file():
        parser.error(f"{run_dir} is not a training run folder (no run_config.json).")

    from hved_tf.config import TrainConfig
    from hved_tf.data.prepare import prepare_data
    from hved_tf.evaluation.metrics import dice as wt_dice

    config = TrainConfig.from_dict(json.loads((run_dir / "run_config.json").read_text()))
    data_config = config.data
    if args.cache_dir:
        data_config = dataclasses.replace(data_config, cache_dir=args.cache_dir)
    test = prepare_data(data_config, run_dir, seed=config.model.seed)["test"]
    if not test:
        parser.error(f"{run_dir}'s split has no test subject.")
    segmenter = _segmenter(run_dir, config)
    all_four = np.ones(4, np.float32)
    columns = ["argmax"] + [f"P>{t:g}" for t in thresholds]
    print(f"{'subject':24} {'true':>6} " + " ".join(f"{c + ' vox':>11} {'Dice':>6}"
                                                   for c in columns))
    dice = {c: [] for c in columns}
    for subject in test:
        out = segmenter.segment_prepared(subject, all_four)
        true = np.asarray(subject.label) > 0
        tumour = 1.0 - out.outputs["probabilities"][..., 0]
        preds = [np.asarray(out.labels) > 0] + [tumour > t for t in thresholds]
        cells = []
        for column, pred in zip(columns, preds):
            dice[column].append(wt_dice(pred, true))
            cells.append(f"{int(pred.sum()):>11} {dice[column][-1]:6.3f}")
        print(f"{subject.id:24} {int(true.sum()):>6} " + " ".join(cells), flush=True)
    print(f"{'mean WT Dice':31} " + " ".join(f"{'':>11} {np.mean(dice[c]):6.3f}"
                                            for c in columns))


if __name__ == "__main__":
    main()
