"""What evaluate scores and where it writes: the subjects (`--data_root` and `--split`, else
the first model's held-out test subjects), the subsets, the models' column names, the
ensembles of `--ensemble`, and the output folder's check."""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Sequence

from hved_tf.config import DEMO_ROOT, TrainConfig
from hved_tf.data.prepare import SPLIT_FILE, default_cache_dir, demo_root, split_subjects
from hved_tf.io import datasets
from hved_tf.io.atomic import check_out_dir as check_output_folder
from hved_tf.io.datasets import Subject
from hved_tf.modalities import subset_codes


def parse_subsets(value: Sequence[str] | None) -> list[str]:
    """The subsets evaluated.

    Args:
        value: ["all"] (or nothing) or subset codes.

    Returns:
        Canonical codes in the paper's order.
    """
    return list(subset_codes(value or ["all"], "subsets", paper_order=True))


def model_names(segmenters: Sequence[Any]) -> list[str]:
    """The models' column names in the tables.

    Args:
        segmenters: the Segmenters evaluated.

    Returns:
        Their kinds, made unique with the run folders' names (then numbers).
    """
    trained_models = segmenters
    names = [t.identity["model"] for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{t.identity['model']}:{pathlib.Path(t.identity['source']).name}"
                 for t in trained_models]
    if len(set(names)) < len(names):
        names = [f"{n}#{k + 1}" for k, n in enumerate(names)]
    return names


def subjects_to_evaluate(data_root: str, split: str,
                         first_trained: Any) -> tuple[list[Subject], pathlib.Path | None]:
    """The labelled subjects evaluate scores.

    Args:
        data_root: --data_root ("": the first model's run).
        split: --split (its test part, or the ids a file lists).
        first_trained: the first Segmenter (its run's split), or None.

    Returns:
        (subjects with labels, the run's cache folder or None).

    Raises:
        ValueError: no labelled subject, or no run folder to take the subjects from.
    """
    if data_root:
        subjects = datasets.discover_subjects(data_root)
        if split:
            text = pathlib.Path(split).read_text()
            if "," in text:
                subjects = datasets.apply_split(
                    subjects, datasets.read_release_split(split), source=split)["test"]
            else:
                keep = set(datasets.read_id_list(split))
                subjects = [s for s in subjects if s.id in keep]
        cache = None
    else:
        run_dir = pathlib.Path(first_trained.identity["source"])
        config_path = run_dir / "run_config.json"
        if not config_path.is_file():
            raise ValueError("Without --data_root the subjects are the test split of the first "
                             "model's training run, but it is not a run folder: give "
                             "--data_root.")
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
        cache = pathlib.Path(config.data.cache_dir or default_cache_dir(run_dir))
        root = (demo_root(config.data, cache, config.model.seed)
                if config.data.root == DEMO_ROOT else config.data.root)
        found = datasets.discover_subjects(root)
        split_file = run_dir / SPLIT_FILE
        if split_file.is_file():              # the split the run itself recorded
            ids = json.loads(split_file.read_text())["test"]
            by_id = {s.id: s for s in found}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise ValueError(f"{split_file} names test subjects that {root} no longer "
                                 f"holds ({', '.join(missing[:5])}); give --data_root.")
            subjects = [by_id[i] for i in ids]
        else:                                 # a run from before split.json: the same split
            subjects = split_subjects(found, config.data, config.model.seed)["test"]
    labelled = [s for s in subjects if s.label_path is not None]
    if not labelled:
        raise ValueError("No labelled subject to evaluate (the split's test part is empty or "
                         "has no label files).")
    return labelled, cache


RESULT_FILES = ("results.csv", "summary.json", "table1.md", "table1.png", "synthesis.md")


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> None:
    """evaluate's output folder checked before any work (`hved_tf.io.atomic.check_out_dir`):
    its results are RESULT_FILES and figures/.

    Args:
        out_dir: --out_dir.
        overwrite: earlier results may be replaced.
    """
    check_output_folder(
        out_dir, overwrite,
        lambda folder: sorted(p for p in folder.iterdir() if p.name in RESULT_FILES),
        lambda folder: sorted(p for p in folder.iterdir()
                              if p.name not in RESULT_FILES and p.name != "figures"))


def parse_ensembles(values: Sequence[str] | None) -> list[tuple[str, list[str]]]:
    """The ensembles of `--ensemble`.

    Args:
        values: ["NAME=PATH,PATH,..."].

    Returns:
        [(name, [paths])].

    Raises:
        ValueError: a value that is not a name and at least two paths.
    """
    ensembles = []
    for value in values or ():
        name, sep, listed = value.partition("=")
        paths = [p for p in listed.split(",") if p]
        if not sep or not name or len(paths) < 2:
            raise ValueError(f"--ensemble {value!r}: expected NAME=PATH,PATH[,...] (a name for "
                             "the table and at least two run folders or .keras files).")
        ensembles.append((name, paths))
    return ensembles
