"""The documentation holds: links and images resolve, the commands in code blocks parse with
their program's flags (`--help` works for each), the package cites only paths of the
repository, and the generated flag reference is current. Each check is also shown to fail on
a constructed bad case."""
import importlib

import pytest
from absl import flags

import docs_check
from conftest import REPO, tool_module

DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
PACKAGE_FILES = [*sorted((REPO / "hved_tf").rglob("*.py")), *sorted((REPO / "tools").rglob("*.py")),
                 *sorted((REPO / "configs").rglob("*.cfg"))]
FLAGS = flags.FLAGS


def _program_flags(module):
    """The flag names of a program (defined and removed again)."""
    program = importlib.import_module(f"hved_tf.{module}").PROGRAM
    before = set(FLAGS)
    program.define_flags()
    names = set(FLAGS) - before
    for name in names:
        delattr(FLAGS, name)
    return names


def test_links_and_images_resolve():
    problems = [p for path in DOCS for p in docs_check.broken_links(path.read_text(), path)]
    assert not problems, "\n".join(problems)


def test_the_commands_shown_name_flags_of_their_program():
    shown = [(m, words, path) for path in DOCS
             for m, words in docs_check.commands(path.read_text())]
    assert any(m == "predict" for m, _, _ in shown)       # the checker finds the commands
    known = {}
    problems = []
    for module, words, path in shown:
        if module not in known:
            known[module] = _program_flags(module)
        problems += [f"{path.relative_to(REPO)}: {p}"
                     for p in docs_check.unknown_flags(module, words, known[module])]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", sorted(set(docs_check.COMMAND_MODULES.values())))
def test_every_command_answers_help(module, capsys):
    program = importlib.import_module(f"hved_tf.{module}").PROGRAM
    assert program.call(["--help"]) == 0
    assert "usage: hved-" in capsys.readouterr().out


def test_the_package_cites_only_paths_of_the_repository():
    problems = [p for path in PACKAGE_FILES
                for p in docs_check.dangling_paths(path.read_text(), path.relative_to(REPO),
                                                   REPO)]
    assert not problems, "\n".join(problems)


def test_the_flag_reference_is_current():
    module = tool_module("tools/dev/flags_reference.py")
    assert (REPO / "docs" / "reference" / "flags.md").read_text() == module.render(), \
        "docs/reference/flags.md is out of date: run python -m tools.dev.flags_reference"


# ------------------------------------------------------------------ the checks can fail
def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("x")
    text = "[ok](there.md) [web](https://example.org) [gone](missing/file.md) ![i](no.png)"
    problems = docs_check.broken_links(text, tmp_path / "page.md")
    assert len(problems) == 2 and "missing/file.md" in problems[0] and "no.png" in problems[1]


def test_an_unknown_flag_is_found():
    text = ("```bash\n.venv/bin/hved-predict --model runs/demo \\\n    --t1cc P/t1c.nii.gz "
            "--noprior_correction  # a comment --not_a_flag\n```\n")
    (module, words), = docs_check.commands(text)
    assert module == "predict"
    assert docs_check.unknown_flags(module, words, _program_flags("predict")) == \
        ["predict: --t1cc"]


def test_a_dangling_path_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "real.md").write_text("x")
    text = "see docs/real.md and docs/explanation/gone.md, tools/<name>.py is a pattern"
    assert docs_check.dangling_paths(text, "m.py", tmp_path) == \
        ["m.py: cites docs/explanation/gone.md, which is not in the repository"]
