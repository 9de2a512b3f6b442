"""Where a finished run stands against the quality benchmark of record of its recipe.

The quality benchmark (`python -m tools.benchmarks.quality ... --record`) writes
`quality_record.json` beside this module: the recipe's resolved configuration (without what
the benchmark sets per seed: the seed, the run folder, the cache folder) and, over its seeds,
each headline figure's per-seed values on its 48 test phantoms. At the end of a run whose
configuration is that recipe's, training prints the range and where the run's own test (a few
held-out subjects) falls in it. For any other recipe it prints nothing: the benchmark says
nothing about it.
"""
from __future__ import annotations

import json
import pathlib

from hved_tf.config import TrainConfig

RECORD = pathlib.Path(__file__).with_name("quality_record.json")
# What the benchmark sets for each seed: not part of a recipe.
PER_SEED = (("run_dir",), ("model", "seed"), ("pipeline", "seed"), ("data", "cache_dir"),
            ("validation_window",))      # not per seed: resolved into "validation"
HEADLINE = (("wt_all4", "WT with all four"), ("et_gap", "ET gap (T1c subsets minus the others)"))


def comparable(config_dict: dict) -> dict:
    """A run_config.json's dict without the per-seed settings.

    Args:
        config_dict: `TrainConfig.to_dict()`.

    Returns:
        A copy without `PER_SEED`'s entries.
    """
    out = json.loads(json.dumps(config_dict))
    for path in PER_SEED:
        node = out
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return out


def read_record(path: pathlib.Path = RECORD) -> dict | None:
    """The record, or None when there is none (or it cannot be read); its recipe in today's
    layout of the configuration (as a run folder's is read: hved_tf.config.stored)."""
    try:
        record = json.loads(pathlib.Path(path).read_text())
        record["config"] = comparable(TrainConfig.from_dict(record["config"]).to_dict())
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _where(value: float, values: list) -> str:
    if value < min(values):
        return "below every benchmarked seed"
    if value > max(values):
        return "above every benchmarked seed"
    return "within the benchmarked seeds' range"


def standing(config_dict: dict, held_out: int, wt_all4: float | None, et_gap: float | None,
             record: dict | None) -> list[str]:
    """Lines saying where a run's test figures stand against the record of its recipe.

    Args:
        config_dict: the run's `TrainConfig.to_dict()`.
        held_out: how many subjects the run's test scored.
        wt_all4: the run's test WT Dice with all four sequences (None: not tested).
        et_gap: the run's enhancing-tumour gap (None: no subject with an enhancing part).
        record: `read_record()`.

    Returns:
        The lines to print; none when there is no record or it is of another recipe.
    """
    if not record or comparable(config_dict) != record.get("config"):
        return []
    lines = [f"  this recipe's quality benchmark ({record['report']}: seeds "
             f"{', '.join(map(str, record['seeds']))}, {record['test_subjects']} test phantoms) "
             f"against this run's {held_out} held-out subjects (a few subjects move a Dice by "
             "about 0.1):"]
    for (key, label), value, fmt in zip(HEADLINE, (wt_all4, et_gap), ("{:.3f}", "{:+.3f}")):
        per_seed = record["figures"][key]
        text = (f"    {label}: benchmark mean {fmt.format(sum(per_seed) / len(per_seed))}, "
                f"seeds {fmt.format(min(per_seed))} to {fmt.format(max(per_seed))}")
        if value is not None:
            text += f"; this run {fmt.format(value)}, {_where(value, per_seed)}"
        lines.append(text)
    return lines
