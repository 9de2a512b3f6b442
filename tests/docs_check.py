"""Checks that the documentation holds (used by tests/test_docs.py): links resolve, the commands
shown in code blocks name real flags of their program, and the package cites only paths that
exist. Each check is a pure function of a text and returns its problems as strings."""
from __future__ import annotations

import pathlib
import re
import shlex

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
COMMAND = re.compile(r"(?:^|\s|/)(?:hved-([a-z-]+)|python3? -m hved_tf\.([a-z_]+))\b")
# The commands' modules (setup.py's console scripts).
COMMAND_MODULES = {"train": "train", "prepare": "prepare", "predict": "predict",
                   "evaluate": "evaluate", "export": "export", "serve-client": "serve_client",
                   "convert": "convert_checkpoint"}
ABSL_FLAGS = {"flagfile", "help", "helpfull", "helpshort", "verbosity"}
# Paths the package's comments may cite: these folders of the repository.
CITED = re.compile(r"(?<![\w./-])((?:docs|tools|configs|tests)/[\w./-]*\w)")


def broken_links(text, source):
    """Relative links and images of a Markdown text (at path `source`) whose target is
    missing."""
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (pathlib.Path(source).parent / target.split("#")[0]).resolve()
        if not path.exists():
            problems.append(f"{source}: link to {target} (no {path})")
    return problems


def commands(text):
    """[(module, [arguments])] of the commands in a Markdown text's code blocks (lines joined
    at a trailing backslash, comments and output lines left out)."""
    found = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0]
            for part in re.split(r"&&|\|\||;", line):
                match = COMMAND.search(part)
                if not match:
                    continue
                module = COMMAND_MODULES.get(match.group(1)) if match.group(1) else match.group(2)
                try:
                    words = shlex.split(part[match.end():])
                except ValueError:
                    words = part[match.end():].split()
                found.append((module, words))
    return found


def unknown_flags(module, words, known):
    """Flags of `words` that the program `module` (its flag names: `known`) does not define."""
    problems = []
    for word in words:
        if not word.startswith("--"):
            continue
        name = word[2:].split("=", 1)[0]
        bare = name[2:] if name.startswith("no") else name
        if name not in known and bare not in known and name not in ABSL_FLAGS:
            problems.append(f"{module}: --{name}")
    return problems


def dangling_paths(text, source, repo):
    """Repository paths (docs/..., tools/..., configs/..., tests/...) cited in a file of the
    package that do not exist."""
    problems = []
    for cited in CITED.findall(text):
        if any(ch in cited for ch in "*<>{}") or cited.endswith((".", "/")):
            continue
        if not (pathlib.Path(repo) / cited).exists():
            problems.append(f"{source}: cites {cited}, which is not in the repository")
    return problems
