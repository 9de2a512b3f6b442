"""The class prior the training windows show against the one of whole volumes, and the weights
that undo the sampler's shift of it at inference (`--prior_correction`).

A sampler that centres windows on the tumour ("balanced", "foreground") makes the loss see
tumour voxels several times more often than a volume holds them (the demo: 4.8% of the
windows' voxels against 1.5% of the volumes'). A network fitted to those windows estimates
p_w(c | x) under the windows' prior pi_w(c); on a whole volume, whose prior is pi_v(c), Bayes'
rule gives p(c | x) proportional to p_w(c | x) * pi_v(c) / pi_w(c) (the prior-shift correction
of Saerens et al., Neural Computation 2002; in logits, the "logit adjustment" of Menon et al.,
ICLR 2021). Without it the demo's network over-segments at the tumour's borders, where
p_w(tumour | x) is near 1/2 (tools/dev/calibration.py).

Both priors are measured on the training subjects, so nothing is tuned on held-out data:
`window_frequencies` draws windows exactly as the training pipeline plans them (its
`WindowSource`, the same sampler, padding and seed rule; spatial augmentation of the windows,
which hardly moves class fractions, is left out) and counts their labels; `volume_frequencies`
counts the labels of the volumes as inference sees them (the cropped volume, unpadded).
`class_weights` is their ratio, scaled so that the largest weight is 1. The correction is exact
for a network trained by cross-entropy alone; with the Dice term it is an approximation, whose
effect docs/experiments/2026-12-demo-tuning.md records.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from hved_tf.config.checks import checked_class_weights
from hved_tf.data.pipeline import WindowSource
from hved_tf.modalities import NUM_CLASSES

CLASS_PRIOR_FILE = "class_prior.json"
VISITS_PER_SUBJECT = 4          # visits of each training subject drawn for the estimate


def volume_frequencies(labels, num_classes=NUM_CLASSES):
    """[C] fractions of the voxels of each class over label volumes (training classes)."""
    counts = np.zeros(num_classes, np.float64)
    for label in labels:
        counts += np.bincount(np.asarray(label).reshape(-1), minlength=num_classes)[:num_classes]
    if not counts.sum():
        raise ValueError("No labelled voxel to measure the class prior on.")
    return counts / counts.sum()


def window_frequencies(subjects, pipeline_config, visits_per_subject=VISITS_PER_SUBJECT,
                       num_classes=NUM_CLASSES):
    """[C] fractions of the voxels of each class over the windows the training pipeline draws
    from `subjects` in its first `visits_per_subject` x len(subjects) visits."""
    source = WindowSource(subjects, pipeline_config)
    # Per-window augmentation reads a margin around each window: the window is its centre.
    inner = tuple(slice(m, m + w) for m, w in zip(pipeline_config.margin, pipeline_config.window))
    counts = np.zeros(num_classes, np.float64)
    for visit in range(visits_per_subject * len(subjects)):
        indices, visits, corners, _ = source.plan(visit)
        for k, v, corner in zip(indices, visits, corners):
            label = source.extract(k, v, corner)[1][inner]
            counts += np.bincount(label.reshape(-1), minlength=num_classes)[:num_classes]
    return counts / counts.sum()


def class_weights(volume_freq, window_freq):
    """(C weights) pi_v / pi_w, the largest 1, rounded to 6 significant digits; a class absent
    from the volumes or from the windows (nothing to correct) keeps the ratio 1."""
    volume_freq, window_freq = np.asarray(volume_freq, float), np.asarray(window_freq, float)
    seen = (volume_freq > 0) & (window_freq > 0)
    ratio = np.where(seen, volume_freq / np.where(seen, window_freq, 1.0), 1.0)
    ratio = ratio / ratio.max()
    return tuple(float(f"{r:.6g}") for r in ratio)


def measure(subjects, pipeline_config):
    """{"volume", "window", "weights"}: the training subjects' class prior, that of their
    training windows, and the weights that correct the second to the first."""
    subjects = [s for s in subjects if s.label is not None]
    volume = volume_frequencies([s.label for s in subjects])
    window = window_frequencies(subjects, pipeline_config)
    return {"volume": [float(f) for f in volume], "window": [float(f) for f in window],
            "weights": list(class_weights(volume, window)),
            "sampler": pipeline_config.sampler, "subjects": len(subjects)}


def read_class_weights(folder):
    """The weights in `folder`/class_prior.json, or () when the folder has none."""
    path = pathlib.Path(folder) / CLASS_PRIOR_FILE
    if not path.is_file():
        return ()
    try:
        weights = json.loads(path.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a readable class prior ({err}). Delete it to run "
                         "without the prior correction, or train again.") from None
    try:
        return checked_class_weights(path, weights)
    except ValueError as err:
        raise ValueError(f"{err} Delete the file to run without the prior correction, or train "
                         "again with --prior_correction.") from None
