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
  `.partial-` and the id of a process no longer running).
- `check_writable(folder, needed_bytes)`: refuses, before long work, a folder that cannot be
  written (a file in the way, no permission, read-only) or lacks the space.
Failures to write raise `OutputError` (a ValueError): one line naming the path and the reason
(disk full, read-only file system, not a directory), never a traceback.

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
from typing import Any, Callable, Iterator

PARTIAL_PREFIX = ".partial-"


class OutputError(ValueError):
    """An output that cannot be written (disk full, read-only, a file in the way...), said in
    one line naming the path. A ValueError, so that the command lines report it as bad input."""


def _reason(err):
    return err.strerror or str(err) or type(err).__name__


@contextlib.contextmanager
def _as_output_error(path):
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(f"Cannot write {path}: {_reason(err)}.") from None


@contextlib.contextmanager
def _named_as(tmp, target):
    """An OutputError about a file inside the temporary folder `tmp` names it in `target`,
    where the user will look for it."""
    try:
        yield
    except OutputError as err:
        raise OutputError(str(err).replace(str(tmp), str(target))) from None


def _temporary_sibling(path):
    return path.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(3)}.{path.name}")


def _make_parent(path):
    with _as_output_error(path.parent):
        if path.parent.exists() and not path.parent.is_dir():
            raise OutputError(f"Cannot write {path}: {path.parent} is a file, not a folder.")
        path.parent.mkdir(parents=True, exist_ok=True)


def check_writable(folder: str | os.PathLike, needed_bytes: int = 0) -> None:
    """Refuses, before any long work, a folder that cannot take new files.

    Args:
        folder: the folder (made if missing).
        needed_bytes: the space the files will take (0: not checked).

    Raises:
        OutputError: a file in the way, no permission, a read-only or full file system.
    """
    folder = pathlib.Path(folder)
    probe = folder / f"{PARTIAL_PREFIX}{os.getpid()}-probe"
    _make_parent(probe)
    with _as_output_error(folder):
        probe.write_bytes(b"")
        probe.unlink()
        free = shutil.disk_usage(folder).free
    if needed_bytes and free < needed_bytes:
        raise OutputError(f"Cannot write {folder}: {free / 2 ** 20:.0f} MB free, about "
                          f"{needed_bytes / 2 ** 20:.0f} MB needed; free some space or choose "
                          "another folder.")


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary path to write, renamed over `path` when the block succeeds.

    Args:
        path: the file to write (its folder is made if missing).

    Yields:
        A sibling path whose name ends with `path`'s; removed if the block fails.
    """
    path = pathlib.Path(path)
    _make_parent(path)
    tmp = _temporary_sibling(path)
    try:
        with _as_output_error(path):
            yield tmp
            _fsync(tmp)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes a text file whole or not at all.

    Args:
        path: the file.
        text: its content.

    Returns:
        The path.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return pathlib.Path(path)


def write_json(path: str | os.PathLike, data: Any, **options: Any) -> pathlib.Path:
    """Writes JSON whole or not at all.

    Args:
        path: the file.
        data: what `json.dumps` takes.
        **options: of `json.dumps` (indent 1 unless given).

    Returns:
        The path.
    """
    options.setdefault("indent", 1)
    return write_text(path, json.dumps(data, **options))


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, replace: bool = False) -> Iterator[pathlib.Path]:
    """A temporary sibling folder to fill, renamed to `target` when the block succeeds.

    Args:
        target: the folder to make.
        replace: swap out an existing `target` (else another process's finished copy wins).

    Yields:
        The temporary folder; removed if the block fails.
    """
    target = pathlib.Path(target)
    _make_parent(target)
    tmp = _temporary_sibling(target)
    with _as_output_error(target):
        tmp.mkdir()
    old = None
    try:
        with _as_output_error(target), _named_as(tmp, target):
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


def _writer_alive(name):
    try:
        pid = int(name[len(PARTIAL_PREFIX):].split("-", 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_partials(folder: str | os.PathLike) -> list[pathlib.Path]:
    """Removes what killed writers (processes no longer running) left in a folder.

    Args:
        folder: where to look (nothing happens when it does not exist).

    Returns:
        The temporary files and folders removed.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for leftover in folder.glob(f"{PARTIAL_PREFIX}*"):
        if _writer_alive(leftover.name):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def existing_ancestor(path: str | os.PathLike) -> pathlib.Path:
    """The nearest existing folder of a path.

    Args:
        path: any path.

    Returns:
        `path` if it exists, else its nearest ancestor that does.
    """
    path = pathlib.Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool,
                  earlier_results: Callable[[pathlib.Path], list],
                  other_files: Callable[[pathlib.Path], list]) -> None:
    """Refuses, before any work, an output folder that cannot take a command's outputs, and
    removes what killed runs left beside and inside it.

    Args:
        out_dir: the command's --out_dir.
        overwrite: earlier results may be replaced.
        earlier_results: lists the paths of the command's earlier results in a folder.
        other_files: lists the paths in a folder that are not the command's (a set of outputs
            is written whole into a folder of its own).

    Raises:
        ValueError: (OutputError for what cannot be written) naming the folder and the way out.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out_dir {out_dir} is a file; give a folder.")
    for folder in (out_dir.parent, out_dir):
        remove_partials(folder)
    if out_dir.is_dir():
        earlier = earlier_results(out_dir)
        if earlier and not overwrite:
            raise ValueError(f"--out_dir {out_dir} holds earlier results ({earlier[0]}); use "
                             "another folder or --overwrite.")
        others = other_files(out_dir)
        if others:
            raise ValueError(f"--out_dir {out_dir} holds other files ({others[0].name}); the "
                             "outputs are written as one set into a folder of their own: give "
                             "a new or empty folder.")
    check_writable(existing_ancestor(out_dir))
