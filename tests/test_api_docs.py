"""The public API documents itself: every public function and method of the modules listed
here has type annotations and a Google-style docstring with `Args:` (when it takes arguments)
and `Returns:` or `Yields:` (when it returns something). The list grows module by module; the
packages the type checker covers (mypy.ini) are its goal."""
import ast

import pytest

from conftest import REPO

DOCUMENTED = ["hved_tf/config/flagdefs.py", "hved_tf/config/stored.py",
              "hved_tf/evaluation/app.py", "hved_tf/evaluation/files.py",
              "hved_tf/evaluation/lesions.py", "hved_tf/evaluation/metrics.py",
              "hved_tf/evaluation/panoptic.py", "hved_tf/evaluation/sources.py",
              "hved_tf/evaluation/statistics.py", "hved_tf/evaluation/tables.py",
              "hved_tf/gaussian.py", "hved_tf/inference/ensemble.py",
              "hved_tf/inference/exported.py", "hved_tf/inference/loading.py",
              "hved_tf/inference/postprocess.py", "hved_tf/inference/precision.py",
              "hved_tf/inference/predictor.py", "hved_tf/inference/segmenter.py",
              "hved_tf/inference/spacing.py", "hved_tf/inference/tta.py",
              "hved_tf/inference/windows.py", "hved_tf/io/atomic.py", "hved_tf/io/datasets.py",
              "hved_tf/io/nifti.py", "hved_tf/losses.py", "hved_tf/models/__init__.py",
              "hved_tf/models/base.py", "hved_tf/models/blocks.py",
              "hved_tf/models/contract.py", "hved_tf/models/decoder.py",
              "hved_tf/models/encoder.py", "hved_tf/models/fusion.py",
              "hved_tf/models/hemis.py", "hved_tf/models/hved.py",
              "hved_tf/models/norm_act.py", "hved_tf/models/ops.py",
              "hved_tf/models/subsets.py", "hved_tf/models/unet.py",
              "hved_tf/preprocessing/crop.py", "hved_tf/preprocessing/grids.py",
              "hved_tf/preprocessing/histogram.py", "hved_tf/preprocessing/normalise.py",
              "hved_tf/preprocessing/resample.py", "hved_tf/settings.py"]


def _public_functions(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node.name, node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    yield f"{node.name}.{item.name}", item


def _problems(fn):
    args = [a for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")]
    doc = ast.get_docstring(fn) or ""
    problems = []
    if not doc:
        return ["no docstring"]
    if any(a.annotation is None for a in args) or fn.returns is None:
        problems.append("missing type annotations")
    if args and "Args:" not in doc:
        problems.append("no Args: section")
    returns_none = isinstance(fn.returns, ast.Constant) and fn.returns.value is None
    if not returns_none and "Returns:" not in doc and "Yields:" not in doc \
            and not any(isinstance(d, ast.Name) and d.id == "property"
                        for d in fn.decorator_list):
        problems.append("no Returns: section")
    for a in args:
        if "Args:" in doc and f"{a.arg}:" not in doc and f"**{a.arg}:" not in doc:
            problems.append(f"argument {a.arg} not in Args:")
    return problems


@pytest.mark.parametrize("module", DOCUMENTED)
def test_public_functions_are_annotated_and_documented(module):
    tree = ast.parse((REPO / module).read_text())
    found = {name: _problems(fn) for name, fn in _public_functions(tree)}
    assert found, f"{module}: no public function found"
    bad = {name: problems for name, problems in found.items() if problems}
    assert not bad, f"{module}: {bad}"


def test_the_check_finds_an_undocumented_function():
    tree = ast.parse("def f(x):\n    return x\n\ndef g(x: int) -> int:\n"
                     "    '''Doubles.\n\n    Returns:\n        2x.\n    '''\n    return 2 * x\n")
    problems = {name: _problems(fn) for name, fn in _public_functions(tree)}
    assert problems == {"f": ["no docstring"], "g": ["no Args: section"]}
