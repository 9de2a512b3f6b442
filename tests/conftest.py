"""Shared test set-up: quiet TensorFlow, the original release's reference folder."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def reference_dir():
    """../shared/reference (or $HVED_REFERENCE_DIR), or None when absent."""
    env = os.environ.get("HVED_REFERENCE_DIR")
    candidates = [pathlib.Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "reference", REPO.parent.parent / "shared" / "reference"]
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture
def reference():
    path = reference_dir()
    if path is None:
        pytest.skip("The original release's reference folder (../shared/reference or "
                    "$HVED_REFERENCE_DIR) is not here; skipping the comparison with it.")
    return path


def read_variable_list(path):
    """{name: shape tuple} from a reference .tsv (variables with an empty shape left out)."""
    shapes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, shape = line.partition("\t")
        if shape.strip():
            shapes[name.strip()] = tuple(int(s) for s in shape.split(","))
    return shapes
