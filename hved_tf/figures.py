"""Pictures of a subject like Fig. 3 of the paper (NumPy arrays; PNG through pillow).

`overlay(gray, labels)`: a colour overlay of training labels on a gray slice in [0, 1]: red
necrotic/non-enhancing core (1), green oedema (2), blue enhancing core (3).
`orthogonal_panels(columns, centre)`: per plane (sagittal, coronal, axial), the columns' slices
through `centre` side by side (rows upwards = the later RAS axis).
`subject_figure(...)`: one RGB image, a row per plane; columns: each input sequence, each
synthesised one (beside its real one when known), the prediction overlay and the truth overlay.
`save_png(path, rgb)`: written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from hved_tf.io.atomic import atomic_path

from hved_tf.modalities import MODALITIES

OVERLAY_COLOURS = {1: (1.0, 0.0, 0.0), 2: (0.0, 1.0, 0.0), 3: (0.0, 0.0, 1.0)}
PLANES = (("axial", 2), ("coronal", 1), ("sagittal", 0))


def normalise(volume, foreground=None):
    """Gray levels in [0, 1] between the 1st and 99th percentiles (of the foreground if given)."""
    volume = np.asarray(volume, np.float32)
    values = volume[foreground] if foreground is not None and np.any(foreground) else volume
    lo, hi = np.percentile(values, [1, 99])
    return np.clip((volume - lo) / max(float(hi - lo), 1e-6), 0, 1)


def overlay(gray, labels, alpha=0.5):
    """RGB [..., 3]: training labels 1 (red), 2 (green), 3 (blue) over gray levels in [0, 1]."""
    rgb = np.repeat(np.asarray(gray, np.float32)[..., None], 3, axis=-1)
    for value, colour in OVERLAY_COLOURS.items():
        where = np.asarray(labels) == value
        rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(colour, np.float32)
    return rgb


def tumour_centre(labels):
    """The centre of the tumour's voxels, else of the volume."""
    tumour = np.argwhere(np.asarray(labels) > 0)
    if len(tumour):
        return tuple(int(v) for v in tumour.mean(0).round())
    return tuple(s // 2 for s in np.shape(labels))


def _slice(volume, axis, index):
    tile = np.take(volume, index, axis=axis)
    tile = np.swapaxes(tile, 0, 1)[::-1]          # rows: the later axis, upwards
    if tile.ndim == 2:
        tile = np.repeat(tile[..., None], 3, axis=-1)
    return tile


def orthogonal_panels(columns, centre, planes=(("sagittal", 0), ("coronal", 1), ("axial", 2))):
    """{plane: [H, W * len(columns), 3]} of the columns ([X, Y, Z] gray or [X, Y, Z, 3] RGB)."""
    return {plane: np.concatenate([_slice(c, axis, centre[axis]) for c in columns],
                                  axis=1).astype(np.float32)
            for plane, axis in planes}


def subject_figure(image, mask, labels, recon=None, truth_labels=None, truth_image=None,
                   centre=None, gap=2):
    """RGB uint8 [H, W, 3]: a row per plane (axial, coronal, sagittal) of the columns
    (inputs, synthesised and real sequences, prediction, truth), and their names.

    image [X, Y, Z, 4] (present channels used), mask [4], labels [X, Y, Z] training classes,
    recon [X, Y, Z, 4] or None, truth_labels / truth_image (the real missing sequences) or None.
    """
    mask = np.asarray(mask) > 0
    fg = np.any(np.asarray(image)[..., mask] != 0, axis=-1) if mask.any() else None
    columns, names = [], []
    for i in np.flatnonzero(mask):
        columns.append(normalise(image[..., i], fg))
        names.append(f"{MODALITIES[i]}")
    if recon is not None:
        for i in np.flatnonzero(~mask):
            columns.append(normalise(recon[..., i], fg))
            names.append(f"{MODALITIES[i]} synthesised")
            if truth_image is not None and np.any(truth_image[..., i]):
                columns.append(normalise(truth_image[..., i], fg))
                names.append(f"{MODALITIES[i]} real")
    base = columns[len(np.flatnonzero(mask)) - 1]      # the last input, under the overlays
    columns.append(overlay(base, labels))
    names.append("prediction")
    if truth_labels is not None:
        columns.append(overlay(base, truth_labels))
        names.append("truth")
    centre = centre or tumour_centre(truth_labels if truth_labels is not None else labels)
    rows = []
    for plane, axis in PLANES:
        tiles = [_slice(c, axis, centre[axis]) for c in columns]
        height = max(t.shape[0] for t in tiles)
        padded = []
        for t in tiles:
            t = np.pad(t, ((0, height - t.shape[0]), (0, gap), (0, 0)))
            padded.append(t)
        rows.append(np.concatenate(padded, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0))) for r in rows]
    rgb = np.concatenate(rows, axis=0)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), names


def save_png(path, rgb):
    """Writes an RGB uint8 array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(rgb, np.uint8), mode="RGB").save(tmp, format="PNG")
    return pathlib.Path(path)
