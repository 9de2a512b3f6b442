"""BraTS-like phantoms: a skull-stripped brain with a tumour, in four MRI contrasts.

Each phantom, deterministic for its seed, has
- a brain: an ellipsoid with an irregular border, zero outside (skull-stripped), white matter
  inside, a grey-matter shell and two CSF ventricles;
- a tumour at a random place inside the brain with a random size and shape: oedema around a
  core made of a necrotic/non-enhancing centre and an enhancing rim;
- contrasts built so that each sequence carries what it carries in real scans: the enhancing rim
  is bright only in T1c; oedema shows mainly in T2 and FLAIR; necrosis is dark in T1 and T1c;
- a smooth multiplicative bias field per sequence, a slight blur and Gaussian noise.
Labels use BraTS 2018 values on disk (necrosis 1, oedema 2, enhancing 4; 2023 layouts get 3).
`write_phantom_dataset` writes them as a BraTS dataset in any layout, some subjects in LPS
orientation (a non-RAS affine) to exercise the geometry code. Pure NumPy/SciPy.
"""
from __future__ import annotations

import pathlib

import numpy as np
from scipy import ndimage

from hved_tf.io.nifti import write_nifti
from hved_tf.modalities import LABEL_CONVENTIONS, MODALITIES

# Mean intensity of each tissue in each sequence (arbitrary units, before scaling).
#          CSF   GM    WM    oedema necrosis enhancing
CONTRASTS = {
    "T1":    (0.20, 0.55, 0.75, 0.50, 0.15, 0.50),
    "T1c":   (0.20, 0.55, 0.75, 0.50, 0.15, 1.30),
    "T2":    (1.00, 0.60, 0.45, 0.95, 0.90, 0.92),
    "FLAIR": (0.15, 0.60, 0.50, 1.15, 0.60, 1.10),
}
SCALES = {"T1": 800.0, "T1c": 1100.0, "T2": 1500.0, "FLAIR": 600.0}
TISSUES = ("csf", "gm", "wm", "oedema", "necrosis", "enhancing")
MIN_SIZE, MAX_SIZE = 32, (240, 240, 155)


def _smooth_noise(shape, rng, coarse=5):
    """Smooth random field of roughly unit amplitude over `shape`."""
    grid = rng.normal(size=(coarse, coarse, coarse))
    # Cubic up to a quarter of the size, then linear: smooth enough, and fast at BraTS size.
    mid = [max(coarse, s // 4) for s in shape]
    field = ndimage.zoom(grid, [m / coarse for m in mid], order=3, mode="nearest")
    field = ndimage.zoom(field, [s / m for s, m in zip(shape, field.shape)], order=1,
                         mode="nearest")
    return field[: shape[0], : shape[1], : shape[2]]


def _coords(shape):
    axes = [np.linspace(-1.0, 1.0, s, dtype=np.float32) for s in shape]
    return np.meshgrid(*axes, indexing="ij")


def make_phantom(shape=(96, 96, 80), seed=0, label_values=LABEL_CONVENTIONS["brats2018"]):
    """({modality: float32 [X, Y, Z]}, label uint8 [X, Y, Z]) in RAS voxel order."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < MIN_SIZE or any(s > m for s, m in zip(shape, MAX_SIZE)):
        raise ValueError(f"Phantom shape must be 3 sizes from {MIN_SIZE} to {MAX_SIZE}, "
                         f"got {shape}.")
    rng = np.random.default_rng(seed)
    x, y, z = _coords(shape)
    # Brain: an ellipsoid with a wavy border.
    radii = rng.uniform([0.70, 0.78, 0.68], [0.82, 0.88, 0.80])
    r_brain = np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)
    r_brain = r_brain + 0.06 * _smooth_noise(shape, rng)
    brain = r_brain < 1.0
    tissue = np.full(shape, 2, np.uint8)                                   # white matter
    tissue[r_brain > 0.82 + 0.05 * _smooth_noise(shape, rng)] = 1          # grey-matter shell
    for side in (-1, 1):                                                   # ventricles
        v = np.sqrt(((x - side * 0.12) / 0.08) ** 2 + (y / 0.25) ** 2 + ((z - 0.05) / 0.15) ** 2)
        tissue[v < 1.0] = 0
    # Tumour: a deformed ball inside the brain, with oedema around it.
    label = np.zeros(shape, np.uint8)
    radius = rng.uniform(0.18, 0.28)
    for _ in range(100):
        centre = rng.uniform(-0.5, 0.5, 3)
        if np.sqrt(np.sum((centre / radii) ** 2)) + 1.5 * radius / radii.min() < 1.05:
            break
    d = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    d = d * (1.0 + 0.18 * _smooth_noise(shape, rng, coarse=4))
    oedema_r = radius * rng.uniform(1.4, 1.8)
    necrosis_r = radius * rng.uniform(0.45, 0.65)
    label[(d < oedema_r) & brain] = 2
    label[(d < radius) & brain] = 3                                        # enhancing rim
    label[(d < necrosis_r) & brain] = 1                                    # necrotic core
    # Tissue classes: 0 CSF, 1 GM, 2 WM, 3 oedema, 4 necrosis, 5 enhancing (CONTRASTS order).
    classes = tissue.copy()
    classes[label == 2], classes[label == 1], classes[label == 3] = 3, 4, 5
    images = {}
    for modality in MODALITIES:
        means = np.asarray(CONTRASTS[modality], np.float32)
        img = means[classes]
        img = ndimage.gaussian_filter(img, 0.7)
        bias = np.exp(0.12 * _smooth_noise(shape, rng, coarse=3)).astype(np.float32)
        img = img * bias + rng.normal(0.0, 0.035, shape).astype(np.float32)
        img = np.clip(img, 0.01, None) * SCALES[modality]
        images[modality] = np.where(brain, img, 0.0).astype(np.float32)
    # `label` holds training classes (0 background, 1 necrosis, 2 oedema, 3 enhancing).
    return images, np.asarray(label_values, np.uint8)[label]


# File naming of each layout: (subject id, relative path pattern, modality suffixes, label).
_NAMING = {
    "brats2018": ("Brats18_PHANTOM_{i:03d}_1", "HGG/{id}/{id}_{s}.nii.gz",
                  ("t1", "t1ce", "t2", "flair"), "seg"),
    "brats2020": ("BraTS20_Training_{i:03d}", "{id}/{id}_{s}.nii.gz",
                  ("t1", "t1ce", "t2", "flair"), "seg"),
    "brats2021": ("BraTS2021_{i:05d}", "{id}/{id}_{s}.nii.gz",
                  ("t1", "t1ce", "t2", "flair"), "seg"),
    "brats2023": ("BraTS-GLI-{i:05d}-000", "{id}/{id}-{s}.nii.gz",
                  ("t1n", "t1c", "t2w", "t2f"), "seg"),
    "release": ("HGG{i}", "{id}_{s}.nii.gz", ("T1", "T1c", "T2", "Flair"), "Label"),
}
LAYOUT_NAMES = tuple(_NAMING)


def phantom_affine(shape, lps, voxel_mm=1.0):
    """`voxel_mm` voxels centred on the origin; LPS flips the first two axes."""
    signs = np.array([-1.0, -1.0, 1.0]) if lps else np.ones(3)
    affine = np.diag([*(signs * voxel_mm), 1.0])
    affine[:3, 3] = -signs * voxel_mm * (np.asarray(shape) - 1) / 2.0
    return affine


def write_dataset(out, n, make, seed=0, layout="brats2020", lps_every=3, progress=None,
                  voxel_mm=1.0):
    """Writes `n` subjects of `make((seed, i), label_values) -> (images, label)` as a BraTS
    dataset under `out`; returns the subject ids. Every `lps_every`-th subject is stored in
    LPS orientation (0: none)."""
    if layout not in _NAMING:
        raise ValueError(f"Unknown layout {layout!r}: expected one of {', '.join(_NAMING)}.")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    id_pattern, path_pattern, suffixes, label_suffix = _NAMING[layout]
    convention = "brats2023" if layout == "brats2023" else "brats2018"
    out = pathlib.Path(out)
    ids = []
    for i in range(1, n + 1):
        sid = id_pattern.format(i=i)
        images, label = make([seed, i], LABEL_CONVENTIONS[convention])
        lps = bool(lps_every) and i % lps_every == 0
        affine = phantom_affine(label.shape, lps, voxel_mm)
        flip = (lambda a: a[::-1, ::-1, :]) if lps else (lambda a: a)
        for modality, suffix in zip(MODALITIES, suffixes):
            write_nifti(out / path_pattern.format(id=sid, s=suffix), flip(images[modality]),
                        affine, kind="image")
        write_nifti(out / path_pattern.format(id=sid, s=label_suffix), flip(label), affine,
                    kind="label")
        ids.append(sid)
        if progress:
            progress(i, n, sid)
    return ids


def write_phantom_dataset(out, n, shape=(96, 96, 80), seed=0, layout="brats2020",
                          lps_every=3, progress=None):
    """Writes `n` ellipsoid phantoms as a BraTS dataset under `out`; returns the subject ids.

    Subject i uses seed (seed, i); every `lps_every`-th subject is stored in LPS orientation.
    """
    return write_dataset(out, n, lambda s, values: make_phantom(shape, s, values), seed,
                         layout=layout, lps_every=lps_every, progress=progress)
