"""Preparing subjects (load, crop, label remap, intensity chain) once, cached on disk.

`prepare_subject(subject, landmarks, spacing=...)` runs the release's chain on one subject: its
present modalities are loaded in RAS and put on one grid (sequences of one exam on different
grids are resampled in world coordinates onto the finest: `hved_tf.preprocessing.grids`),
stacked in modality order (missing ones as zeros), resampled to the model's voxel size
`spacing` when they have another (cubic; labels nearest: `hved_tf.preprocessing.resample`),
cropped to the non-zero box (release rule), labels mapped to training classes 0..3,
intensities normalised (`normalise_intensities`).

`SubjectCache(folder, landmarks, ...)` keeps each prepared subject as NumPy files, read back
memory-mapped. An entry's key is made from the source files' paths, sizes and modification
times and from every setting (landmarks, cutoffs, padding, crop, voxel size), so a changed file or setting
makes a new entry. An entry is written into a temporary folder renamed only when complete: the
cache never holds a partial entry. Per-class voxel indices are stored for the label-balanced
sampler (background subsampled).

The normalised image is stored in `dtype`: float16 by default (half the bytes: about 37 MB for a
BraTS subject instead of 75; the whitened intensities keep a relative precision of 5e-4, and
each channel's minimum, the padding and background value, is taken from the stored values), or
float32. `prepare_all(..., workers=N)` prepares subjects in N processes (spawned: they import
NumPy and nibabel only); each entry is still written whole or not at all, so an interrupted or
killed preparation leaves no partial entry, whatever the number of workers.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import sys

import numpy as np

from hved_tf.io.nifti import available_memory, load_nifti
from hved_tf.modalities import MODALITIES, NUM_CLASSES, to_training_labels
from hved_tf.io.atomic import atomic_directory
from hved_tf.preprocessing.crop import CropBox, crop
from hved_tf.preprocessing.grids import (check_one_exam, checked_reference, images_onto,
                                         same_grid)
from hved_tf.preprocessing.histogram import DEFAULT_CUTOFF
from hved_tf.preprocessing.normalise import STORAGE_DTYPES, prepare_image
from hved_tf.preprocessing.resample import (check_memory, image_resampled, onto_grid,
                                            spacing_change)

log = logging.getLogger(__name__)
CACHE_VERSION = 5          # 4: meta.json records each file's shape, dtype and size; 5: crop box in file order
MAX_INDICES_PER_CLASS = 200_000
DEFAULT_CACHE_DTYPE = "float16"


@dataclasses.dataclass
class PreparedSubject:
    id: str
    image: np.ndarray            # float32 [x, y, z, 4], cropped, normalised (RAS)
    label: np.ndarray | None     # uint8 [x, y, z], training classes 0..3
    available: np.ndarray        # float32 [4]
    box: CropBox                 # where the crop sits in the RAS grid
    class_indices: list | None   # per class: flat voxel indices (int64), or None
    label_convention: str = "brats2018"
    minimum: np.ndarray | None = None   # float32 [4]: each channel's minimum (padding value)
    geometry: object = None      # the reference grid's Geometry (not cached: inference only)


class DamagedEntry(Exception):
    """A cache entry whose files are not what its meta.json recorded (rebuilt on read)."""


def _class_indices(label, rng):
    out = []
    flat = label.reshape(-1)
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(flat == c)
        if idx.size > MAX_INDICES_PER_CLASS:
            idx = np.sort(rng.choice(idx, MAX_INDICES_PER_CLASS, replace=False))
        out.append(idx.astype(np.int64))
    return out


def load_subject_image(subject, reference=""):
    """(raw image [X, Y, Z, 4] float32 in RAS, missing modalities zeros; the geometries of the
    files, the reference grid's first). Sequences on different grids are resampled onto the
    reference grid (`hved_tf.preprocessing.grids`: the finest, or the modality `reference`)."""
    volumes, geometries = [], []
    names = list(subject.paths)
    for modality, path in subject.paths.items():
        try:
            volume, geometry = load_nifti(path, kind="image")
        except ValueError as err:
            raise ValueError(f"{modality}: {err}") from None
        volumes.append(volume)
        geometries.append(geometry)
    ref = checked_reference(geometries, names, reference)
    if not all(same_grid(g, geometries[ref]) for g in geometries):
        check_memory(geometries[ref].ras_shape, len(MODALITIES), f"Subject {subject.id}",
                     available_memory())
        volumes = images_onto(volumes, geometries, geometries[ref])
    image = np.zeros((*volumes[ref].shape, len(MODALITIES)), np.float32)
    for modality, volume in zip(names, volumes):
        image[..., MODALITIES.index(modality)] = volume
    return image, [geometries[ref]] + [g for k, g in enumerate(geometries) if k != ref]


def _label_on(subject, reference_geometry):
    """The subject's training labels on the reference grid (nearest neighbour when the label
    file lies on another grid of the same exam)."""
    try:
        raw, geometry = load_nifti(subject.label_path, kind="label")
    except ValueError as err:
        raise ValueError(f"label: {err}") from None
    if not same_grid(geometry, reference_geometry):
        check_one_exam([reference_geometry, geometry], ["reference", "label"])
        raw = onto_grid(raw, geometry.ras_affine, reference_geometry.ras_affine,
                        reference_geometry.ras_shape, order=0)
    return to_training_labels(raw, subject.label_convention, source=str(subject.label_path))


def at_spacing(image, label, geometry, spacing, source):
    """(image, label) resampled from `geometry`'s voxel sizes to `spacing` (mm; None: kept):
    cubic for the image, its zero background kept (`image_resampled`), nearest for labels."""
    change = spacing_change(image.shape, geometry.ras_zooms, spacing)
    if change is None:
        return image, label
    check_memory(change.out_shape, image.shape[-1], source, available_memory())
    image = image_resampled(image, change.to_model)
    label = None if label is None else change.to_model(label, 0)
    return image, label


def prepare_subject(subject, landmarks, cutoff=DEFAULT_CUTOFF, padding=10, do_crop=True,
                    spacing=None, reference=""):
    """Loads and prepares one subject (see the module docstring); `spacing` (mm): the voxel
    size to resample to (None: the files' own)."""
    image, geometries = load_subject_image(subject, reference)
    label = None if subject.label_path is None else _label_on(subject, geometries[0])
    image, label = at_spacing(image, label, geometries[0], spacing, source=f"Subject {subject.id}")
    try:
        image, box = prepare_image(image, landmarks, cutoff, padding, do_crop=do_crop,
                                   flipped=geometries[0].ras_flips)
    except ValueError as err:
        raise ValueError(f"Subject {subject.id}: {err}") from None
    label = None if label is None else np.ascontiguousarray(crop(label, box))
    indices = None if label is None else _class_indices(label, np.random.default_rng(0))
    return PreparedSubject(subject.id, image, label, subject.available, box=box,
                           class_indices=indices, label_convention=subject.label_convention,
                           minimum=image.reshape(-1, image.shape[-1]).min(0),
                           geometry=geometries[0])


def _file_identity(path):
    st = os.stat(path)
    return [str(pathlib.Path(path).resolve()), st.st_size, st.st_mtime_ns]


class SubjectCache:
    """Prepared subjects on disk, memory-mapped on read."""

    def __init__(self, folder, landmarks, cutoff=DEFAULT_CUTOFF, padding=10, do_crop=True,
                 dtype=DEFAULT_CACHE_DTYPE, spacing=None, reference=""):
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"--cache_dtype must be one of {', '.join(STORAGE_DTYPES)}, got "
                             f"{dtype!r}.")
        self.folder = pathlib.Path(folder)
        self.landmarks = {m: np.asarray(v, np.float64) for m, v in landmarks.items()}
        self.cutoff, self.padding, self.do_crop = tuple(cutoff), int(padding), bool(do_crop)
        self.dtype = dtype
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.reference = reference

    def settings(self):
        """What a worker process needs to rebuild this cache."""
        return (str(self.folder), {m: v.tolist() for m, v in self.landmarks.items()},
                self.cutoff, self.padding, self.do_crop, self.dtype, self.spacing,
                self.reference)

    def key(self, subject):
        settings = {
            "version": CACHE_VERSION, "cutoff": self.cutoff, "padding": self.padding,
            "crop": self.do_crop, "dtype": self.dtype,
            "landmarks": {m: v.tolist() for m, v in sorted(self.landmarks.items())},
            "files": {m: _file_identity(p) for m, p in subject.paths.items()},
            "label": None if subject.label_path is None else _file_identity(subject.label_path),
            "convention": subject.label_convention,
        }
        if self.spacing is not None:        # (absent: the keys of entries before it existed)
            settings["spacing"] = list(self.spacing)
        if self.reference:
            settings["reference"] = self.reference
        blob = json.dumps(settings, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def entry(self, subject):
        return self.folder / f"{subject.id}-{self.key(subject)}"

    def get(self, subject):
        """The prepared subject, from the cache (verified) or prepared now and stored."""
        entry = self.entry(subject)
        if (entry / "meta.json").is_file():
            try:
                return self._load(entry)
            except DamagedEntry as err:
                log.warning("The cache entry %s of subject %s is damaged (%s); preparing the "
                            "subject again.", entry, subject.id, err)
        self._store(prepare_subject(subject, self.landmarks, self.cutoff, self.padding,
                                    do_crop=self.do_crop, spacing=self.spacing,
                                    reference=self.reference), entry)
        return self._load(entry)

    def _store(self, prepared, entry):
        # A concurrent process's finished entry of the same key wins (atomic_directory); a
        # folder without a valid meta.json is no entry (a damaged one, or an older version's
        # leftover) and is replaced.
        image = np.ascontiguousarray(prepared.image, dtype=self.dtype)
        minimum = image.reshape(-1, image.shape[-1]).min(0).astype(np.float32)
        arrays = {"image": image}
        if prepared.label is not None:
            arrays["label"] = prepared.label
            arrays.update({f"class_{c}": idx for c, idx in enumerate(prepared.class_indices)})
        with atomic_directory(entry, replace=entry.exists()) as tmp:
            files = {}
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array)
                files[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                               "bytes": (tmp / f"{name}.npy").stat().st_size}
            meta = {"id": prepared.id, "available": prepared.available.tolist(),
                    "box": prepared.box.to_dict(), "has_label": prepared.label is not None,
                    "label_convention": prepared.label_convention,
                    "shape": list(prepared.image.shape),
                    "minimum": [float(v) for v in minimum], "files": files}
            (tmp / "meta.json").write_text(json.dumps(meta))   # last: marks the entry complete

    @staticmethod
    def _array(entry, name, meta, mmap):
        """One array of an entry, checked against what meta.json recorded when written."""
        path = entry / f"{name}.npy"
        expected = meta["files"][name]
        if not path.is_file() or path.stat().st_size != expected["bytes"]:
            raise DamagedEntry(f"{path.name}: {path.stat().st_size if path.is_file() else 'no'} "
                               f"bytes, {expected['bytes']} written")
        try:
            array = np.load(path, mmap_mode="r" if mmap else None)
        except (ValueError, OSError) as err:
            raise DamagedEntry(f"{path.name}: {err}") from None
        if list(array.shape) != expected["shape"] or str(array.dtype) != expected["dtype"]:
            raise DamagedEntry(f"{path.name}: {array.dtype}{list(array.shape)}, "
                               f"{expected['dtype']}{expected['shape']} written")
        return array

    @classmethod
    def _load(cls, entry):
        try:
            meta = json.loads((entry / "meta.json").read_text())
            meta["files"]
        except (ValueError, KeyError, OSError) as err:
            raise DamagedEntry(f"meta.json: {err or 'unreadable'}") from None
        label = indices = None
        if meta["has_label"]:
            label = cls._array(entry, "label", meta, mmap=True)
            indices = [cls._array(entry, f"class_{c}", meta, mmap=False)
                       for c in range(NUM_CLASSES)]
        return PreparedSubject(meta["id"], cls._array(entry, "image", meta, mmap=True), label,
                               np.asarray(meta["available"], np.float32),
                               box=CropBox.from_dict(meta["box"]), class_indices=indices,
                               label_convention=meta.get("label_convention", "brats2018"),
                               minimum=np.asarray(meta["minimum"], np.float32))

    def prepare_all(self, subjects, on_error="fail", progress=None, skipped=None, workers=1):
        """Prepares every subject once, in `workers` processes; a bad subject fails the run or
        is skipped with a logged reason (and appended to `skipped` as {"id", "stage",
        "reason"} when given). `progress(done, total, subject id)` after each subject."""
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}.")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--prepare_workers must be a positive integer, got {workers!r}.")
        todo = [s for s in subjects if not (self.entry(s) / "meta.json").is_file()]
        outcomes = {}
        if workers > 1 and len(todo) > 1:
            outcomes = self._in_processes(todo, workers, on_error, progress, total=len(subjects))
        prepared = []
        for k, subject in enumerate(subjects, start=1):
            try:
                error = outcomes.get(subject.id)
                if error is not None:
                    raise error
                prepared.append(self.get(subject))
            except ValueError as err:
                if on_error == "fail":
                    raise
                log.warning("Skipping subject %s: %s", subject.id, err)
                if skipped is not None:
                    skipped.append({"id": subject.id, "stage": "preparation",
                                    "reason": str(err)})
            if progress and not outcomes:      # in processes: counted as they finished
                progress(k, len(subjects), subject.id)
        return prepared

    def _in_processes(self, todo, workers, on_error, progress, total):
        """{subject id: None, or the ValueError that refused it} for the subjects `todo`."""
        outcomes = {}
        done = total - len(todo)
        context = multiprocessing.get_context("spawn")     # never fork a process running TF
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)),
                                                    mp_context=context) as pool:
            with _main_module_hidden():       # workers start while the tasks are submitted
                futures = {pool.submit(_prepare_in_worker, self.settings(), s): s
                           for s in todo}
            try:
                for future in concurrent.futures.as_completed(futures):
                    subject = futures[future]
                    try:
                        future.result()
                        outcomes[subject.id] = None
                    except ValueError as err:
                        outcomes[subject.id] = err
                        if on_error == "fail":
                            raise
                    done += 1
                    if progress:
                        progress(done, total, subject.id)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return outcomes


@contextlib.contextmanager
def _main_module_hidden():
    """A spawned process imports the parent's main module (`python -m hved_tf.train`: all of
    TensorFlow, seconds and hundreds of MB per worker) unless it cannot find it; the workers'
    function lives here, so they need nothing of it."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__spec__", "__file__") if hasattr(main, k)}
    try:
        if main is not None:
            main.__spec__ = None
            if hasattr(main, "__file__"):
                del main.__file__
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _prepare_in_worker(settings, subject):
    SubjectCache(*settings).get(subject)
