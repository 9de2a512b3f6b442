"""From a data configuration to prepared train/validation/test subjects.

Steps: the demo's phantoms are generated on first use (into the cache folder, written in a
temporary folder renamed when complete); subjects are discovered (layout detected); the split
comes from a split file or a seeded 70/10/20 fold; landmarks come from a hist.txt or are trained
on the training subjects' raw volumes and written into the run folder; every subject is prepared
once into the cache (bad ones skipped with a logged reason, or fatal, as configured).
"""
from __future__ import annotations

import functools
import logging
import pathlib
import time

from hved_tf.config import DEMO_ROOT
from hved_tf.data.cache import SubjectCache, load_subject_image
from hved_tf.data.anatomy import GENERATOR_VERSION, write_anatomical_dataset
from hved_tf.data.synthetic import write_phantom_dataset
from hved_tf.io import datasets
from hved_tf.io.atomic import atomic_directory, check_writable
from hved_tf.modalities import MODALITIES
from hved_tf.preprocessing.histogram import (read_niftynet_landmarks, train_landmarks,
                                             write_niftynet_landmarks)
from hved_tf.progress import Progress

log = logging.getLogger(__name__)
SPLIT_FILE = "split.json"    # in a run folder: the ids of its train, validation, test subjects


def default_cache_dir(run_dir):
    return pathlib.Path(run_dir).resolve().parent / "cache"


def demo_root(data_config, cache_dir, seed=0):
    """The demo's phantom folder, generated once (atomically)."""
    n = data_config.demo_subjects
    if data_config.demo_phantoms == "anatomical":
        size = f"{data_config.demo_voxel_mm:g}mm"
        name = f"demo_anatomical_v{GENERATOR_VERSION}_{n}x{size}_seed{seed}"
    else:
        size = "x".join(map(str, data_config.demo_shape))
        name = f"demo_phantoms_{n}x{size}_seed{seed}"
    root = pathlib.Path(cache_dir) / name
    if root.is_dir():
        return root
    start = time.time()
    log.info(f"Generating {n} {data_config.demo_phantoms} demo phantoms ({size}) into {root}")
    progress = Progress("  phantoms", n, "subjects written")
    # Another process (another worker) finishing the same folder first wins.
    with atomic_directory(root) as tmp:
        if data_config.demo_phantoms == "anatomical":
            write_anatomical_dataset(tmp, n, data_config.demo_voxel_mm, seed=seed,
                                     progress=lambda i, total, sid: progress.update(i))
        else:
            write_phantom_dataset(tmp, n, tuple(data_config.demo_shape), seed=seed,
                                  layout="brats2020")
    log.info("Demo phantoms ready in %.0f s", time.time() - start)
    return root


def split_subjects(subjects, data_config, seed=0):
    if data_config.split:
        path = data_config.split
        text = pathlib.Path(path).read_text()
        if "," in text:
            split = datasets.read_release_split(path, data_config.naming or None)
        else:
            split = {sid: "train" for sid in datasets.read_id_list(path)}
        return datasets.apply_split(subjects, split, source=str(path))
    split = datasets.kfold_split([s.id for s in subjects], data_config.fold, data_config.folds,
                                 seed=seed)
    return datasets.apply_split(subjects, split)


def _raw_images(subjects, on_error, skipped):
    """The raw images of `subjects` for landmark training; bad ones skipped as configured."""
    progress = Progress("  landmarks", len(subjects), "subjects read")
    for k, subject in enumerate(subjects):
        progress.update(k)
        try:
            yield load_subject_image(subject)[0]
        except ValueError as err:
            if on_error == "fail":
                raise
            log.warning("Skipping subject %s for the landmarks: %s", subject.id, err)
            skipped.append({"id": subject.id, "stage": "landmarks", "reason": str(err)})
    progress.update(len(subjects))


def landmarks_for(data_config, train_subjects, run_dir, skipped=None):
    """Landmarks from --hist_file, or trained on training subjects and kept in the run dir."""
    if data_config.hist_file:
        return read_niftynet_landmarks(data_config.hist_file)
    kept = pathlib.Path(run_dir) / "hist.txt"
    if kept.is_file():
        return read_niftynet_landmarks(kept)
    chosen = train_subjects[:data_config.landmark_subjects or None]
    log.info("Training histogram landmarks on %d subjects", len(chosen))
    skipped = [] if skipped is None else skipped
    landmarks = train_landmarks(_raw_images(chosen, data_config.on_bad_subject, skipped))
    missing = [m for m in MODALITIES if m not in landmarks]
    if missing:
        raise ValueError(f"No readable training subject has {', '.join(missing)}: cannot "
                         "train its landmarks. Give --hist_file.")
    write_niftynet_landmarks(kept, landmarks)
    return landmarks


def _counted(progress, offset, total, done, part_total, subject_id):
    progress(offset + done, total, subject_id)


def prepare_data(data_config, run_dir, seed=0, progress=None):
    """{"train", "validation", "test": [PreparedSubject], "skipped": [{"id", "stage",
    "reason"}]}: every subject that could not be used is listed, none dropped silently.
    `progress(done, total, subject id)` counts over the three parts together."""
    cache_dir = pathlib.Path(data_config.cache_dir or default_cache_dir(run_dir))
    check_writable(cache_dir)
    root = (demo_root(data_config, cache_dir, seed) if data_config.root == DEMO_ROOT
            else pathlib.Path(data_config.root))
    subjects = datasets.discover_subjects(root)
    parts = split_subjects(subjects, data_config, seed)
    if not parts["train"]:
        raise ValueError(f"The split leaves no training subject (of {len(subjects)} found in "
                         f"{root}).")
    skipped = []
    unlabelled = [s for s in parts["train"] if s.label_path is None]
    if unlabelled:
        log.warning("%d training subject(s) have no label and are left out.", len(unlabelled))
        skipped += [{"id": s.id, "stage": "split", "reason": "no label file"}
                    for s in unlabelled]
        parts["train"] = [s for s in parts["train"] if s.label_path is not None]
    landmarks = landmarks_for(data_config, parts["train"], run_dir, skipped)
    cache = SubjectCache(cache_dir / "subjects", landmarks, dtype=data_config.cache_dtype,
                         spacing=data_config.spacing())
    prepared = {}
    left_out = {s["id"] for s in skipped}        # listed once, at the stage that refused them
    parts = {name: [s for s in part if s.id not in left_out] for name, part in parts.items()}
    total, offset = sum(len(p) for p in parts.values()), 0
    for name, part in parts.items():
        counted = functools.partial(_counted, progress, offset, total) if progress else None
        prepared[name] = cache.prepare_all(part, on_error=data_config.on_bad_subject,
                                           progress=counted, skipped=skipped,
                                           workers=data_config.prepare_workers)
        offset += len(part)
    if not prepared["train"]:
        raise ValueError("No training subject could be prepared.")
    prepared["skipped"] = skipped
    return prepared
