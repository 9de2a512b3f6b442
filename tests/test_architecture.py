"""The architecture's rules, checked on the source (docs/explanation/architecture.md).

- the import-linter contracts of `.importlinter` (layers: every import points downward, no
  circle; the numerics touch no files);
- no module over 400 lines, no function over 60 lines (hved_tf/);
- no import inside a function (hved_tf/): dependencies are declared at the top of a module;
- no `isinstance` on a model class outside hved_tf/models/: the rest reads capabilities;
- no function with more than 8 parameters, no call passing more than 4 arguments by position
  (hved_tf/): settings travel as config objects, and long calls name what they pass.
"""
import ast
import logging

import pytest
from importlinter import cli as importlinter_cli

from conftest import REPO

PACKAGE = REPO / "hved_tf"
MODEL_CLASSES = {"UHVED", "UHeMIS", "SubsetUNet", "HeMIS", "HeteroModalModel"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8            # self and cls not counted
MAX_POSITIONAL = 4            # arguments of one call passed by position (*args not counted)


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(REPO)
    # import-linter configures logging with disable_existing_loggers: the loggers it finds
    # (hved_tf's among them) would stay disabled for the tests that run after this one
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    disabled = {logger: logger.disabled for logger in loggers}
    try:
        assert importlinter_cli.lint_imports(config_filename=str(REPO / ".importlinter"),
                                             no_cache=True) == 0
    finally:
        for logger, was in disabled.items():
            logger.disabled = was


def test_module_and_function_sizes():
    too_long = []
    for path in _modules():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(REPO)}: {lines} lines")
        for fn in _functions(_tree(path)):
            length = fn.end_lineno - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                too_long.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}: {length} lines")
    assert not too_long, "\n".join(too_long)


def test_no_import_inside_a_function():
    inner = []
    for path in _modules():
        for fn in _functions(_tree(path)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    inner.append(f"{path.relative_to(REPO)}:{node.lineno} in {fn.name}")
    assert not inner, "\n".join(inner)


def test_no_isinstance_on_model_classes_outside_models():
    found = []
    for path in _modules():
        if "models" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"
                    and len(node.args) == 2):
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & MODEL_CLASSES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, "\n".join(found)


def test_few_parameters_and_short_positional_calls():
    found = []
    for path in _modules():
        tree = _tree(path)
        for fn in _functions(tree):
            a = fn.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            count = len(names) - (1 if names and names[0] in ("self", "cls") else 0)
            if count > MAX_PARAMETERS:
                found.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}: {count} "
                             "parameters")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                positional = [x for x in node.args if not isinstance(x, ast.Starred)]
                if len(positional) > MAX_POSITIONAL:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} "
                                 f"{ast.unparse(node.func)}(): {len(positional)} positional")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("rule", [test_module_and_function_sizes, test_no_import_inside_a_function,
                                  test_no_isinstance_on_model_classes_outside_models,
                                  test_few_parameters_and_short_positional_calls])
def test_the_rules_catch_a_violation(rule, monkeypatch, tmp_path):
    """Each AST rule fails on a package that breaks it (so none passes vacuously)."""
    bad = tmp_path / "hved_tf"
    bad.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (bad / "bad.py").write_text(
        "def f(model):\n    import os\n    return isinstance(model, UHVED)\n\n\n"
        f"def g():\n{body}\n\n\n"
        "def h(a, b, c, d, e, f, g, h, i):\n    return h(1, 2, 3, 4, 5, 6, 7, 8, 9)\n"
        + "\n" * 400)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", bad)
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    with pytest.raises(AssertionError):
        rule()
