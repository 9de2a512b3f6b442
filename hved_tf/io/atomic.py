"""All-or-nothing writes: the one way hved_tf puts a file or a set of files on disk.

- `atomic_path(path)`: a context manager yielding a temporary path in the same folder (its name
  ends with the target's name, so suffix-sensitive writers such as Keras' `.weights.h5`,
  `.keras` and nibabel's `.nii.gz` accept it); when the block succeeds the file is flushed to
  disk and renamed over `path`, when it fails the temporary file is removed. A reader therefore
  sees the complete old file or the complete new one, never a part.
- `write_text(path, text)` / `write_json(path, data)`: a text file through `atomic_path`.
- `atomic_directory(target, replace=False)`: a context manager yielding a temporary sibling
  folder to fill; when the block succeeds it is renamed to `target` (with `replace`, an
  existing `target` is swapped out and removed), when it fails it is removed. If `target`
  appeared meanwhile and `replace` is False (another process made the same entry), ours is
  dropped and theirs kept.
- `remove_partials(folder)`: removes what a killed process left of either (names starting with
  `.partial-`).

Temporary names start with `.partial-` and carry the process id and a random token, so
concurrent writers never collide.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
import shutil

PARTIAL_PREFIX = ".partial-"


def _temporary_sibling(path):
    return path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(3)}.{path.name}")


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renamed over `path` when the block succeeds."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text):
    """Writes `text` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return pathlib.Path(path)


def write_json(path, data, **options):
    """Writes `data` as JSON (indent 1 unless told) atomically; returns the path."""
    options.setdefault("indent", 1)
    return write_text(path, json.dumps(data, **options))


@contextlib.contextmanager
def atomic_directory(target, replace=False):
    """Yields a temporary sibling folder; renamed to `target` when the block succeeds."""
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(target)
    tmp.mkdir()
    old = None
    try:
        yield tmp
        if replace and target.exists():
            old = _temporary_sibling(target)
            os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            if replace or not target.is_dir():   # not another process's finished copy
                raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def remove_partials(folder):
    """Removes the temporary files and folders a killed writer left in `folder`."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for leftover in folder.glob(f"{PARTIAL_PREFIX}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed
