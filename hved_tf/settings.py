"""A setting is declared once, as a dataclass field that carries everything about it.

    steps: int = setting(60_000, "Optimiser steps.", group="optimisation", check=positive)

`setting(default, help, **about)` is a `dataclasses.field` whose metadata holds the command-line
flag's help and, where they are not the obvious ones:

    flag          the flag's name (default: the field's); a few keep the names users know
                  (`--patch` fills `pipeline.window`), declared here and nowhere else
    group         the --help group it is listed under (default: its section's)
    choices       the values it takes (an enum flag)
    check         `check(flag_name, value)` raising ValueError (hved_tf.config.checks)
    items         the type of a list's items when the default is empty (int, float, str)
    parse         `parse(flag_name, strings)` -> value, for a flag with its own syntax
    flag_default  the flag's default when it is not written as the field's ("auto" for None)
    multi         a repeatable flag (its values a tuple)
    required      the command refuses to run without it
    kind          the flag's type when the default is None (int, str)

`section(cls, group)` nests a dataclass whose settings are flags too. A field with neither is
not a flag (filled by the code, e.g. `PipelineConfig.seed`).

`flags_of(cls)` lists a config's flags in declaration order; `check_fields(obj)` runs every
field's check. `hved_tf.config.flagdefs` defines absl flags from the same and builds configs from
parsed flags; tools/dev/flags_reference.py writes docs/reference/flags.md from them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

ABOUT = ("flag", "group", "choices", "check", "items", "parse", "flag_default", "multi",
         "required", "kind")


def setting(default: Any, help: str, **about: Any) -> Any:
    """A dataclass field that is a command-line flag.

    Args:
        default: the value when the flag is not given (immutable: a tuple, not a list).
        help: one line for --help and the generated reference.
        **about: any of `ABOUT` (the module's docstring says each).

    Returns:
        A `dataclasses.field` holding the setting's metadata.
    """
    unknown = sorted(set(about) - set(ABOUT))
    if unknown:
        raise TypeError(f"setting(): unknown {', '.join(unknown)}; known: {', '.join(ABOUT)}")
    if isinstance(default, (list, dict, set)):
        raise TypeError("setting(): give a tuple as the default of a list setting")
    return dataclasses.field(default=default, metadata={"help": help, **about})


def section(cls: type, group: str = "") -> Any:
    """A nested dataclass whose settings are flags too.

    Args:
        cls: the section's dataclass (its default is `cls()`).
        group: the --help group of its settings that name none.

    Returns:
        A `dataclasses.field`.
    """
    return dataclasses.field(default_factory=cls, metadata={"section": cls, "group": group})


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag of a config: its name, its field (default, metadata) and its --help group."""
    name: str
    field: dataclasses.Field
    group: str

    def about(self, key: str, default: Any = None) -> Any:
        """One fact of the setting.

        Args:
            key: one of `ABOUT`, or "help".
            default: when the setting does not say.

        Returns:
            The setting's value for `key`.
        """
        return self.field.metadata.get(key, default)

    @property
    def default(self) -> Any:
        """The flag's default as the field holds it (`flag_default` when the flag's differs)."""
        return self.about("flag_default", self.field.default)


def flags_of(cls: type, group: str = "options") -> Iterator[Flag]:
    """The flags of the dataclass `cls` and of its sections, in declaration order.

    Args:
        cls: a config dataclass.
        group: the --help group of the settings that name none.

    Yields:
        One `Flag` per setting.
    """
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "section" in meta:
            yield from flags_of(meta["section"], meta.get("group") or group)
        elif "help" in meta:
            yield Flag(meta.get("flag", field.name), field, meta.get("group", group))


def check_fields(obj: Any) -> None:
    """Runs the checks of every setting of a config (not of its sections): its `choices`,
    then its `check`.

    Args:
        obj: a config dataclass instance.

    Raises:
        ValueError: naming the flag and what it expects.
    """
    for field in dataclasses.fields(obj):
        name, value = field.metadata.get("flag", field.name), getattr(obj, field.name)
        choices = field.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"--{name} must be one of {', '.join(map(str, choices))}, got "
                             f"{value!r}.")
        check: Callable | None = field.metadata.get("check")
        if check is not None:
            check(name, value)
