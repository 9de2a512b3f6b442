"""The type checker (mypy, settings in mypy.ini) finds no error in the numerical and inference
packages, and does find one in a module that has one (so the check cannot pass vacuously)."""
from mypy import api

from conftest import REPO


def run_mypy(*args, cache):
    stdout, stderr, status = api.run(["--config-file", str(REPO / "mypy.ini"),
                                      "--cache-dir", str(cache), *args])
    return status, stdout + stderr


def test_the_packages_type_check(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)                 # mypy.ini's files are relative to the repository
    status, output = run_mypy(cache=tmp_path / "cache")
    assert status == 0, output
    assert "Success: no issues found" in output


def test_a_type_error_is_found(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    x: int = 1\n    x = 'one'\n    return x\n")
    status, output = run_mypy(str(bad), cache=tmp_path / "cache")
    assert status == 1 and "Incompatible types in assignment" in output, output
