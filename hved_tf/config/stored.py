"""A configuration as a run folder keeps it (run_config.json), and the one table that brings
the layouts of older versions to today's.

`MOVED` lists every key that changed place or name since the first run folders, `DROPPED` the
keys that are no longer settings, `ADDED` the value an older run had for a setting added since
(what it was trained with, not today's default). `migrated(d)` applies them; `load(cls, d)`
builds a dataclass from its dict, refusing an unknown key (hved_tf.config.checks.known) and
reading JSON lists back as tuples.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from hved_tf.config.checks import known
from hved_tf.config.vocabulary import OLD_PROTOCOL_NAMES

# (where it was, where it is now): the flat layout before the configuration tree.
MOVED = (
    ("patch", "pipeline.window"), ("batch_size", "pipeline.batch_size"),
    ("windows_per_volume", "pipeline.windows_per_volume"), ("sampler", "pipeline.sampler"),
    ("flip_axes", "pipeline.flip_axes"), ("rotation_degrees", "pipeline.rotation_degrees"),
    ("scaling", "pipeline.scaling"),
    ("optim.dice_weight", "optim.loss.dice"), ("optim.ce_weight", "optim.loss.ce"),
    ("optim.kl_weight", "optim.loss.kl"), ("optim.recon_weight", "optim.loss.recon"),
    ("optim.decay_weight", "optim.loss.decay"), ("optim.weight_decay", "optim.loss.decay_scale"),
)
# No longer settings: what a loaded model carries (hved_tf.inference.loading.LoadedModel).
DROPPED = ("validation.fallback_window", "validation.class_weights")
# Runs written before these settings existed were trained without them.
ADDED = (("pipeline.volume_padding", 0), ("pipeline.spatial_augmentation", "window"),
         ("validation.tta", False))
# Values renamed: {key: {old value: new value}}.
RENAMED_VALUES = {"test_protocol": OLD_PROTOCOL_NAMES}


def _pop(d: dict, path: str) -> tuple[bool, Any]:
    *parents, key = path.split(".")
    for part in parents:
        d = d.get(part)
        if not isinstance(d, dict):
            return False, None
    return (True, d.pop(key)) if key in d else (False, None)


def _put(d: dict, path: str, value: Any, replace: bool = True) -> None:
    *parents, key = path.split(".")
    for part in parents:
        d = d.setdefault(part, {})
        if not isinstance(d, dict):
            return
    if replace or key not in d:
        d[key] = value


def migrated(d: dict) -> dict:
    """A copy of a stored TrainConfig dict in today's layout.

    Args:
        d: a run_config.json's content, of any version.

    Returns:
        The same settings where today's TrainConfig has them.
    """
    d = _deep_copy(d)
    for old, new in MOVED:
        found, value = _pop(d, old)
        if found:
            _put(d, new, value)
    for path in DROPPED:
        _pop(d, path)
    for path, value in ADDED:
        if path.startswith("validation.") and not isinstance(d.get("validation"), dict):
            continue
        _put(d, path, value, replace=False)
    for key, renames in RENAMED_VALUES.items():
        if key in d:
            d[key] = renames.get(d[key], d[key])
    return d


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def load(cls: type, d: dict, where: str = "") -> Any:
    """An instance of the dataclass `cls` from its dict (sections recursively).

    Args:
        cls: a config dataclass.
        d: its `dataclasses.asdict` (through JSON: lists for tuples).
        where: the dotted place of `d` in the whole, for error messages.

    Returns:
        `cls(**d)`, lists as tuples.

    Raises:
        ValueError: a key that is not a field, named with the closest field.
    """
    known(cls, d, where)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in d:
            continue
        value = d[field.name]
        section = field.metadata.get("section") or field.metadata.get("stored")
        if section is not None and isinstance(value, dict):
            kwargs[field.name] = load(section, value, f"{where}{field.name}.")
        else:
            kwargs[field.name] = _tuples(value)
    return cls(**kwargs)
