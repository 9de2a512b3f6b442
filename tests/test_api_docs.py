"""The public API documents itself: every public function and method of the packages the
type checker covers (mypy.ini: models, losses, gaussian, inference, evaluation, io,
preprocessing) and of the settings machinery has type annotations and a Google-style docstring
with `Args:` (when it takes arguments) and `Returns:` or `Yields:` (when it returns something).
A new module of those packages is checked as soon as it exists."""
import ast
import re

import pytest

from conftest import REPO

PACKAGES = ("models", "losses.py", "gaussian.py", "inference", "evaluation", "io",
            "preprocessing", "settings.py", "config/flagdefs.py", "config/stored.py")


def _modules():
    found = []
    for name in PACKAGES:
        path = REPO / "hved_tf" / name
        found += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return [str(p.relative_to(REPO)) for p in found]


def _public_functions(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node.name, node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    yield f"{node.name}.{item.name}", item


# An override may point at the method it overrides instead of repeating its sections:
# "Args and Returns: as `Base.method`." (or "Args: as `Base.method`." with its own Returns:).
SAME_AS = re.compile(r"^(Args|Args and Returns): as `[A-Za-z_][\w.]*`\.?$", re.M)


def _problems(fn):
    args = [a for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")]
    doc = ast.get_docstring(fn) or ""
    problems = []
    if not doc:
        return ["no docstring"]
    if any(a.annotation is None for a in args) or fn.returns is None:
        problems.append("missing type annotations")
    same = {m.group(1) for m in SAME_AS.finditer(doc)}
    has_args = "Args:" in doc or bool(same)
    has_returns = "Returns:" in doc or "Yields:" in doc or "Args and Returns" in same
    if args and not has_args:
        problems.append("no Args: section")
    returns_none = isinstance(fn.returns, ast.Constant) and fn.returns.value is None
    if not returns_none and not has_returns \
            and not any(isinstance(d, ast.Name) and d.id == "property"
                        for d in fn.decorator_list):
        problems.append("no Returns: section")
    for a in args:
        if not same and "Args:" in doc and f"{a.arg}:" not in doc and f"**{a.arg}:" not in doc:
            problems.append(f"argument {a.arg} not in Args:")
    return problems


@pytest.mark.parametrize("module", _modules())
def test_public_functions_are_annotated_and_documented(module):
    tree = ast.parse((REPO / module).read_text())
    found = {name: _problems(fn) for name, fn in _public_functions(tree)}
    bad = {name: problems for name, problems in found.items() if problems}
    assert not bad, f"{module}: {bad}"


def test_the_check_covers_the_packages():
    modules = _modules()
    assert len(modules) > 40 and "hved_tf/models/hved.py" in modules
    checked = sum(1 for m in modules for _ in _public_functions(ast.parse((REPO / m).read_text())))
    assert checked > 250                      # public functions and methods under the check


def test_the_check_finds_an_undocumented_function():
    tree = ast.parse("def f(x):\n    return x\n\ndef g(x: int) -> int:\n"
                     "    '''Doubles.\n\n    Returns:\n        2x.\n    '''\n    return 2 * x\n")
    problems = {name: _problems(fn) for name, fn in _public_functions(tree)}
    assert problems == {"f": ["no docstring"], "g": ["no Args: section"]}
    pointing = ('def h(x: int) -> int:\n    """Doubles.\n\n    Args and Returns: as `g`.\n    """\n'
                '    return 2 * x\n\n'
                'def k(x: int) -> int:\n    """Doubles.\n\n    Args: as `g`.\n    """\n'
                '    return 2 * x\n')
    problems = {name: _problems(fn) for name, fn in _public_functions(ast.parse(pointing))}
    assert problems == {"h": [], "k": ["no Returns: section"]}
