"""absl flags made from the configuration dataclasses, and configs made from parsed flags.

`define(cls)` defines one flag per setting of `cls` (hved_tf.settings), grouped for --help
as the settings say; `build(cls)` reads the parsed flags back into an instance of `cls` (values
converted, a list item that does not parse refused naming the flag); `required(cls)` names the
flags a command cannot run without. Nothing here knows a particular setting: a new field of a
config is a new flag of every command that uses the config.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from absl import flags

from hved_tf.settings import Flag, flags_of
from hved_tf.flaggroups import flag_group

FLAGS = flags.FLAGS
ITEM_WORDS = {int: "integers", float: "numbers"}


def _grouped(cls: type) -> dict[str, list[Flag]]:
    groups: dict[str, list[Flag]] = {}
    seen: set[str] = set()
    for flag in flags_of(cls):
        if flag.name in seen:
            raise TypeError(f"{cls.__name__}: two settings are the flag --{flag.name}")
        seen.add(flag.name)
        groups.setdefault(flag.group, []).append(flag)
    return groups


def _define_one(flag: Flag) -> None:
    name, help_text = flag.name, flag.about("help")
    default = None if flag.about("required") else flag.default
    if flag.about("multi"):
        flags.DEFINE_multi_string(name, None, help_text)
    elif flag.about("choices") is not None:
        flags.DEFINE_enum(name, default, list(flag.about("choices")), help_text)
    elif isinstance(flag.default, bool):
        flags.DEFINE_bool(name, default, help_text)
    elif isinstance(flag.default, tuple):
        flags.DEFINE_list(name, [str(v) for v in default], help_text)
    elif flag.about("kind") is int or isinstance(default, int):
        flags.DEFINE_integer(name, default, help_text)
    elif isinstance(default, float):
        flags.DEFINE_float(name, default, help_text)
    else:
        flags.DEFINE_string(name, default, help_text)


def define(cls: type) -> None:
    """Defines an absl flag for every setting, grouped for --help.

    Args:
        cls: a config dataclass (its sections included).
    """
    for title, group in _grouped(cls).items():
        with flag_group(title):
            for flag in group:
                _define_one(flag)


def required(cls: type) -> tuple[str, ...]:
    """The flags a command refuses to run without.

    Args:
        cls: a config dataclass.

    Returns:
        The names of its settings marked `required`.
    """
    return tuple(f.name for f in flags_of(cls) if f.about("required"))


def _items(flag: Flag) -> type:
    default = flag.default
    if flag.about("items") is not None:
        return flag.about("items")
    return type(default[0]) if isinstance(default, tuple) and default else str


def _value(flag: Flag, raw: Any) -> Any:
    """The field's value of a flag's parsed value."""
    parse = flag.about("parse")
    if parse is not None:
        return parse(flag.name, list(raw or ()))
    if flag.about("multi"):
        return tuple(raw or ())
    if not isinstance(flag.default, tuple):
        return raw
    kind = _items(flag)
    try:
        return tuple(kind(v) for v in raw)
    except (TypeError, ValueError):
        what = ITEM_WORDS.get(kind, "values")
        raise ValueError(f"--{flag.name} must be {what} separated by commas, got "
                         f"{','.join(map(str, raw))!r}.") from None


def build(cls: type, values: Any = FLAGS) -> Any:
    """An instance of the config dataclass `cls` from parsed flags (not validated).

    Args:
        cls: a config dataclass whose flags `define` defined.
        values: the parsed flags (absl's FLAGS).

    Returns:
        `cls(...)`, each setting from its flag, each other field its default.
    """
    kwargs = {}
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "section" in meta:
            kwargs[field.name] = build(meta["section"], values)
        elif "help" in meta:
            flag = Flag(meta.get("flag", field.name), field, "")
            kwargs[field.name] = _value(flag, values[flag.name].value)
    return cls(**kwargs)
