"""Checks of configuration values, one per kind, each naming the flag in its message.

A check is `check(flag_name, value)` raising ValueError; `setting(..., check=...)` attaches one
to a field (hved_tf.settings), and the configs' `validate()` run them with the rules that
tie several fields together."""
from __future__ import annotations

import dataclasses
import difflib
import math

from hved_tf.modalities import NUM_CLASSES


def known(cls, values, where=""):
    """`values` (a dict of a saved config's section `where`, e.g. "pipeline.") when every key is
    a field of the dataclass `cls`; else one error naming the key and the closest field."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = (f"; did you mean {where}{close[0]}?" if close
                    else f"; the settings there: {', '.join(names)}")
            raise ValueError(f"unknown setting {where}{key}{hint}")
    return values


def positive(name, value):
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be a positive integer, got {value!r}.")


def non_negative(note=""):
    """The check of an integer >= 0; `note` says what 0 means, e.g. " (0: off)"."""
    def check(name, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"--{name} must be an integer >= 0{note}, got {value!r}.")
    return check


def between(low, high, high_open=False, note=""):
    """The check of a number in [low, high] (or [low, high) with `high_open`)."""
    def check(name, value):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (low <= value < high if high_open else low <= value <= high):
            interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"--{name} must be in {interval}{note}, got {value!r}.")
    return check


def choice(name, value, choices):
    """Refuses `value` unless it is one of `choices`, naming the flag."""
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {value!r}.")


def one_of(choices):
    """The check of a value among `choices`."""
    return lambda name, value: choice(name, value, choices)


def sizes(minimum, example="112,112,112"):
    """The check of three integers >= `minimum` (a window, a shape)."""
    return lambda name, value: three_sizes(name, value, minimum, example)


def three_sizes(name, value, minimum, example="112,112,112"):
    """Refuses a value that is not three integers >= `minimum`, naming the flag."""
    if (len(value) != 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                               for v in value)):
        raise ValueError(f"--{name} must be three integers >= {minimum}, e.g. {example}; got "
                         f"{tuple(value)}.")


def voxel_sizes(name, value):
    """Empty, or three finite positive voxel sizes (mm)."""
    if not value:
        return
    ok = len(value) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and math.isfinite(v) and v > 0 for v in value)
    if not ok:
        raise ValueError(f"--{name} must be three positive voxel sizes in mm, e.g. 1,1,1 "
                         f"(empty: the data's own); got {tuple(value)}.")


def checked_class_weights(source, weights, num_classes=NUM_CLASSES):
    """`weights` as a tuple of `num_classes` positive finite floats, else a ValueError naming
    `source` (the prior correction's weights: hved_tf.data.class_prior)."""
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        values = ()
    if len(values) != num_classes or not all(math.isfinite(w) and w > 0 for w in values):
        raise ValueError(f"{source}: expected {num_classes} positive class weights, got "
                         f"{weights!r}.")
    return values
