"""Flags grouped by topic for --help: `flag_group(title)` around their definitions, and
`help_text(program, doc, groups)` (what `hved_tf.cli` prints for --help)."""
from __future__ import annotations

import contextlib
import textwrap

from absl import flags

FLAGS = flags.FLAGS
GROUPS = []              # [(title, [flag names])] of the program being defined
# The installed command of each program (setup.py's console scripts).
COMMANDS = {"train": "hved-train", "prepare": "hved-prepare", "predict": "hved-predict",
            "evaluate": "hved-evaluate", "export": "hved-export",
            "serve_client": "hved-serve-client", "convert_checkpoint": "hved-convert"}


@contextlib.contextmanager
def flag_group(title):
    """The flags defined inside the block are shown under `title` by --help."""
    before = set(FLAGS)
    yield
    GROUPS.append((title, [name for name in FLAGS if name not in before]))


def _flag_line(flag):
    default = flag.default_as_str if flag.default not in (None, "", []) else ""
    help_text = " ".join((flag.help or "").split())
    if default:
        help_text += f" [default: {default.strip(chr(39))}]"
    head = f"  --{flag.name}"
    body = textwrap.wrap(help_text, 100 - 28) or [""]
    lines = [f"{head:<28}{body[0]}" if len(head) < 27 else head]
    if len(head) >= 27:
        lines.append(" " * 28 + body[0])
    lines += [" " * 28 + line for line in body[1:]]
    return "\n".join(lines)


def help_text(name, doc, groups):
    """The --help of a program: usage, the docstring's first paragraph, flags by group."""
    summary = (doc or "").strip().split("\n\n")[0]
    parts = [f"usage: {COMMANDS.get(name, 'hved-' + name)} [--flag=value ...] [--flagfile=FILE]   "
             f"(or: python -m hved_tf.{name} ...)",
             "", summary, ""]
    for title, names in groups:
        parts.append(f"{title}:")
        parts += [_flag_line(FLAGS[n]) for n in names]
        parts.append("")
    parts.append("--helpfull lists every flag, absl's and TensorFlow's included; --verbosity=1 "
                 "shows TensorFlow's own log lines again.")
    return "\n".join(parts)
