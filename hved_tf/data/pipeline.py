"""The tf.data training pipeline over prepared (cached, memory-mapped) subjects.

Each *visit* of a subject draws `windows_per_volume` windows from it (the release drew 32 per
volume); subjects are visited in a seeded order reshuffled every epoch, windows of `cycle_length`
subjects are interleaved, augmented in a parallel map and prefetched. Elements:

    ({"image": float32 [X, Y, Z, 4], "available": float32 [4]}, label int32 [X, Y, Z, 1])

where `available` marks the modalities the subject really has (the training step never draws a
missing one as present nor uses it as a reconstruction target).

Samplers (pure NumPy, below): "uniform" (every window position equally likely, the release's)
"balanced" (a class present in the subject chosen uniformly, then one of its voxels as the
window centre; a window near the border slides inside the volume) and "foreground" (each window
with probability `foreground_fraction` centred as "balanced" on a tumour class, else uniform:
nnU-Net's foreground oversampling; more windows of healthy tissue than "balanced", which
centres most windows on the tumour). Windows larger than the volume along an axis are padded
at the end, images with their channel's minimum, labels with 0 (with rotation or zoom on, the
margin read around a window is edge-padded instead). `volume_padding` pads each volume before
windows are drawn: per window, virtually, with the channel minimum and label 0
(`--spatial_augmentation=window`), or, in the release's mode, the whole volume with each
line's minimum before its flips and zoom (`hved_tf.data.visit_augment`). Everything random is derived from `seed`
and the visit number: the stream is reproducible.
"""
from __future__ import annotations

import mmap
import threading

import numpy as np
import tensorflow as tf

from hved_tf.config import PipelineConfig
from hved_tf.data import augment, intensity
from hved_tf.data.visit_augment import draw_visit_transform, pad_line_minimum, transform_volume
from hved_tf.modalities import NUM_CLASSES, NUM_MODALITIES

# ------------------------------------------------------------------ samplers (NumPy)

def uniform_corners(shape, window, n, rng):
    """[n, 3] window corners, every valid position equally likely (0 where the window is larger)."""
    highs = [max(int(s) - int(w), 0) + 1 for s, w in zip(shape, window)]
    return np.stack([rng.integers(0, h, n) for h in highs], axis=-1)


def balanced_centres(class_indices, shape, n, rng):
    """[n, 3] voxels: a class present chosen uniformly, then one of its voxels uniformly."""
    present = [c for c, idx in enumerate(class_indices) if len(idx)]
    if not present:
        raise ValueError("The balanced sampler needs a labelled subject.")
    classes = rng.choice(present, n)
    flat = np.array([class_indices[c][rng.integers(len(class_indices[c]))] for c in classes])
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def foreground_corners(class_indices, shape, window, n, fraction, rng, offset=0):
    """[n, 3] corners in a volume of `shape` (the subject padded by `offset` voxels on each
    side; `class_indices` index the unpadded subject): uniform, except a share `fraction`
    (each window with that probability) centred on a voxel of a tumour class (classes 1...)
    chosen uniformly among those present. A subject without tumour gets uniform windows."""
    corners = uniform_corners(shape, window, n, rng)
    tumour = [np.empty(0, np.int64)] + list(class_indices[1:])
    if fraction > 0 and any(len(idx) for idx in tumour):
        pick = rng.uniform(size=n) < fraction
        if pick.any():
            corners[pick] = centred_corners(tumour, shape, window, int(pick.sum()), rng=rng,
                                            offset=offset)
    return corners


def centred_corners(class_indices, shape, window, n, rng, offset=0):
    """[n, 3] corners of "balanced" windows in a volume of `shape` (the subject padded by
    `offset` voxels on each side; `class_indices` index the unpadded subject)."""
    unpadded = tuple(int(s) - 2 * offset for s in shape)
    centres = balanced_centres(class_indices, unpadded, n, rng) + offset
    return corners_from_centres(centres, shape, window)


def corners_from_centres(centres, shape, window):
    """Window corners putting each centre in the middle, slid to stay inside the volume."""
    window = np.asarray(window)
    corner = np.asarray(centres) - window // 2
    return np.clip(corner, 0, np.maximum(np.asarray(shape) - window, 0))


def extract_window(volume, corner, window, pad_value):
    """volume[corner : corner + window] ([X, Y, Z, ...]), padded at the end where too small."""
    sl = tuple(slice(int(c), int(c) + int(w)) for c, w in zip(corner, window))
    part = np.asarray(volume[sl])
    missing = [int(w) - s for w, s in zip(window, part.shape[:3])]
    if any(missing):
        pads = [(0, m) for m in missing] + [(0, 0)] * (part.ndim - 3)
        if np.ndim(pad_value) and part.ndim == 4:   # one value per channel
            part = np.stack([np.pad(part[..., c], pads[:3], constant_values=pad_value[c])
                             for c in range(part.shape[-1])], axis=-1)
        else:
            part = np.pad(part, pads, constant_values=pad_value)
    return part


def read_region(volume, corner, window, margin=(0, 0, 0), padding=0, pad_value=0.0):
    """The window at `corner` of the volume padded by `padding` voxels of `pad_value` on each
    side (`corner` in padded coordinates), with `margin` more voxels on each side.

    Beyond the padded volume: `pad_value` without a margin (a window larger than the volume
    is padded at the end, as `extract_window` does); with a margin (rotation/zoom on) its
    edge, matching the resampler's clamp (for a skull-stripped volume the edge is its
    background, close to the channel minimum). With no padding and no margin this is
    `extract_window`.
    """
    shape = np.asarray(volume.shape[:3])
    lo = np.asarray(corner) - np.asarray(margin)              # padded coordinates
    hi = np.asarray(corner) + np.asarray(window) + np.asarray(margin)
    inside_lo, inside_hi = np.maximum(lo, 0), np.minimum(hi, shape + 2 * padding)
    src_lo = np.clip(inside_lo - padding, 0, shape)           # the volume's own voxels
    src_hi = np.clip(inside_hi - padding, src_lo, shape)
    part = np.asarray(volume[tuple(slice(a, b) for a, b in zip(src_lo, src_hi))])
    part = _pad_constant(part, [(int(a + padding - l), int(h - b - padding)) for a, b, l, h
                                in zip(src_lo, src_hi, inside_lo, inside_hi)], pad_value)
    beyond = [(int(a - l), int(h - b)) for l, a, b, h in zip(lo, inside_lo, inside_hi, hi)]
    if any(margin):
        return np.pad(part, beyond + [(0, 0)] * (part.ndim - 3), mode="edge")
    return _pad_constant(part, beyond, pad_value)


def _pad_constant(part, pads, pad_value):
    """np.pad with a constant, one value per channel of a 4-D part."""
    if not any(p or q for p, q in pads):
        return part
    full = list(pads) + [(0, 0)] * (part.ndim - 3)
    if np.ndim(pad_value) and part.ndim == 4:
        return np.stack([np.pad(part[..., c], full[:3], constant_values=pad_value[c])
                         for c in range(part.shape[-1])], axis=-1)
    return np.pad(part, full, constant_values=pad_value)


# ------------------------------------------------------------------ tf.data

def _release_pages(array):
    """Drops the pages of a memory-mapped array from this process's resident memory.

    The pages are the cache file's, so nothing is lost: a later read maps them again. Without
    this, windows drawn all over 16 BraTS-size subjects would leave every page resident and the
    pipeline's resident memory would grow to the size of the whole cache.
    """
    mm = getattr(array, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


class WindowSource:
    """Plans the windows of a visit, and extracts one window (through tf.numpy_function)."""

    def __init__(self, subjects, config):
        self.subjects = list(subjects)
        self.config = config
        if not self.subjects:
            raise ValueError("No subject to draw training windows from.")
        for s in self.subjects:
            if s.label is None:
                raise ValueError(f"Subject {s.id} has no label: it cannot be used for training.")
        self._minima = {}
        self._visits = {}                 # release augmentation: visit -> [image, label, left]
        self._lock = threading.Lock()

    def _minimum(self, k):
        if k not in self._minima:
            subject = self.subjects[k]
            minimum = getattr(subject, "minimum", None)
            if minimum is None:
                image = subject.image
                minimum = np.asarray(image).reshape(-1, image.shape[-1]).min(0)
                _release_pages(image)
            self._minima[k] = np.asarray(minimum, np.float32)
        return self._minima[k]

    def subject_of_visit(self, visit):
        n = len(self.subjects)
        epoch, pos = divmod(int(visit), n)
        return int(np.random.default_rng([self.config.seed, epoch]).permutation(n)[pos])

    def plan(self, visit):
        """(subject index [n], visit [n], corners [n, 3], seeds [n, 2]) of one visit's
        windows, corners in the padded volume's coordinates."""
        cfg = self.config
        k = self.subject_of_visit(visit)
        subject = self.subjects[k]
        rng = np.random.default_rng([cfg.seed, 1, int(visit)])
        n = cfg.windows_per_volume
        if cfg.spatial_augmentation == "release":
            image, label = self._transformed(visit, k)
            shape = image.shape[:3]
            indices = (None if cfg.sampler == "uniform" else
                       [np.flatnonzero(label == c) for c in range(NUM_CLASSES)])
            offset = 0
        else:
            shape = tuple(s + 2 * cfg.volume_padding for s in subject.image.shape[:3])
            indices, offset = subject.class_indices, cfg.volume_padding
        if cfg.sampler == "uniform":
            corners = uniform_corners(shape, cfg.window, n, rng)
        elif cfg.sampler == "foreground":
            corners = foreground_corners(indices, shape, cfg.window, n,
                                         fraction=cfg.foreground_fraction, rng=rng, offset=offset)
        else:
            corners = centred_corners(indices, shape, cfg.window, n, rng=rng, offset=offset)
        seeds = rng.integers(0, 2 ** 31 - 1, size=(n, 2), dtype=np.int64)
        return (np.full(n, k, np.int64), np.full(n, visit, np.int64), corners.astype(np.int64),
                seeds)

    def _transformed(self, visit, k):
        """The visit's padded, zoomed and flipped volume (kept until its windows are read)."""
        cfg = self.config
        subject = self.subjects[k]
        rng = np.random.default_rng([cfg.seed, 2, int(visit)])
        transform = draw_visit_transform(rng, cfg.scaling, cfg.flip_axes)
        image = pad_line_minimum(np.asarray(subject.image, np.float32), cfg.volume_padding)
        label = pad_line_minimum(np.asarray(subject.label), cfg.volume_padding)
        _release_pages(subject.image)
        _release_pages(subject.label)
        image, label = transform_volume(image, label, transform, cfg.release_label_filtering)
        with self._lock:
            self._visits[int(visit)] = [image, label, cfg.windows_per_volume]
        return image, label

    def extract(self, k, visit, corner):
        """(image [X', Y', Z', 4] float32, label [X', Y', Z', 1] int32, available [4])."""
        cfg = self.config
        subject = self.subjects[int(k)]
        if cfg.spatial_augmentation == "release":
            with self._lock:
                entry = self._visits[int(visit)]
                entry[2] -= 1
                if not entry[2]:                  # the visit's last window: let it go
                    del self._visits[int(visit)]
            image = extract_window(entry[0], corner, cfg.window, self._minimum(int(k)))
            label = extract_window(entry[1], corner, cfg.window, 0)
        else:
            image = read_region(subject.image, corner, cfg.window, cfg.margin,
                                padding=cfg.volume_padding, pad_value=self._minimum(int(k)))
            label = read_region(subject.label, corner, cfg.window, cfg.margin,
                                padding=cfg.volume_padding, pad_value=0)
            _release_pages(subject.image)
            _release_pages(subject.label)
        return (image.astype(np.float32), label.astype(np.int32)[..., None],
                subject.available.astype(np.float32))


def make_training_dataset(subjects, config=PipelineConfig()):
    """Infinite, augmented, batched stream of training windows (see the module docstring).

    A visit only plans its windows (corners and seeds); each window is read from the
    memory-mapped cache when the stream reaches it, so at most a few windows are in memory.
    """
    config.validate()
    source = WindowSource(subjects, config)
    window = tuple(int(w) for w in config.window)
    outer = tuple(w + 2 * m for w, m in zip(window, config.margin))

    def visit(v):
        k, visits, corners, seeds = tf.numpy_function(
            source.plan, [v], [tf.int64, tf.int64, tf.int64, tf.int64], stateful=False)
        k.set_shape([None])
        visits.set_shape([None])
        corners.set_shape([None, 3])
        seeds.set_shape([None, 2])
        return tf.data.Dataset.from_tensor_slices((k, visits, corners, seeds))

    def read(k, visit_id, corner, seed):
        image, label, available = tf.numpy_function(
            source.extract, [k, visit_id, corner], [tf.float32, tf.int32, tf.float32],
            stateful=False)
        image.set_shape([*outer, NUM_MODALITIES])
        label.set_shape([*outer, 1])
        available.set_shape([NUM_MODALITIES])
        return image, label, available, seed

    def transform(image, label, available, seed):
        seeds = tf.random.experimental.stateless_split(seed, 2)
        if any(config.margin):
            image, label = augment.random_affine(image, label, window, seeds[0],
                                                 rotation_degrees=config.rotation_degrees,
                                                 scaling=config.scaling)
        if config.spatial_augmentation == "window":      # release: flipped per visit
            image, label = augment.random_flip(image, label, tuple(config.flip_axes),
                                               seeds[1])
        if config.intensity.active:                      # its own stream: the spatial one
            image.set_shape([*window, NUM_MODALITIES])   # stays as it was without it
            image = intensity.augment_intensity(
                image, tf.random.experimental.stateless_fold_in(seed, 3), config.intensity)
        image.set_shape([*window, NUM_MODALITIES])
        label.set_shape([*window, 1])
        return {"image": image, "available": available}, label

    ds = tf.data.Dataset.range(2 ** 62)
    ds = ds.interleave(visit, cycle_length=config.cycle_length, block_length=1,
                       num_parallel_calls=1, deterministic=True)
    ds = ds.map(read, num_parallel_calls=2, deterministic=True)
    ds = ds.map(transform, num_parallel_calls=2, deterministic=True)
    ds = ds.batch(config.batch_size, drop_remainder=True)
    return ds.prefetch(config.prefetch)
