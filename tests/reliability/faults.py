"""The fault matrix's tools (imported by its test modules, fixtures included): the command lines
run in this process, a small tmpfs, the inputs.

`cli(name, *args)` runs `python -m hved_tf.<name> args...` through its `Program.call` in the
test's own process (TensorFlow is started once for all cases, not once per case) and returns
its exit status with what it printed. An exception escaping the program fails the test with
its traceback: that is exactly the outcome the matrix exists to rule out.

`refused(outcome, code, *names)` is the matrix's assertion: the exit status, one `error:` (or
`interrupted:`) line naming each of `names` (a file, a flag, a folder), no traceback.
`whole_or_nothing(folder, expected)` asserts an output folder holds its complete set or does not
exist, and that no temporary `.partial-` file or folder is left anywhere around it.

`tmpfs(size, readonly)` mounts a small tmpfs (disk-full and read-only cases); where mounting is
not permitted (not root, no CAP_SYS_ADMIN) the case is skipped with a message.
"""
import contextlib
import pathlib
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

# The command lines, imported before any test patches what they import by name.
import hved_tf.evaluate  # noqa: F401,E402
import hved_tf.export  # noqa: F401,E402
import hved_tf.predict  # noqa: F401,E402
import hved_tf.train  # noqa: F401,E402
from conftest import Outcome, cli  # noqa: F401  (the programs in-process, for the tests here)
from hved_tf.data.synthetic import make_phantom
from hved_tf.io.atomic import PARTIAL_PREFIX
from hved_tf.modalities import MODALITIES

SHAPE = (33, 38, 35)
FAST = ("--samples=1", "--window=32,32,32", "--overlap=0")


def refused(outcome, code, *names):
    """Exit status `code`, one error line naming each of `names`, no traceback; the line."""
    text = outcome.out + outcome.err
    assert "Traceback" not in text, outcome
    assert outcome.code == code, outcome
    lines = [line for line in outcome.err.splitlines()
             if line.startswith(("error:", "interrupted:"))]
    assert len(lines) == 1, outcome
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def partials(*folders):
    """Temporary files or folders of hved_tf's atomic writes under `folders` (recursively)."""
    found = []
    for folder in folders:
        folder = pathlib.Path(folder)
        if folder.is_dir():
            found += [p for p in folder.rglob(f"{PARTIAL_PREFIX}*")]
    return found


def whole_or_nothing(folder, expected=None):
    """`folder` does not exist, or holds exactly `expected` (names; None: anything); no
    temporary leftovers beside or inside it."""
    folder = pathlib.Path(folder)
    assert not partials(folder.parent), partials(folder.parent)
    if folder.exists() and expected is not None:
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


def write_nifti_case(folder, modalities=MODALITIES, affine=None, edit=None):
    """A subject's NIfTI files (phantom of SHAPE); `edit(modality, image)` may return a changed
    Nifti1Image for a modality (the damaged one). Returns {modality: path}."""
    volumes, _ = make_phantom(SHAPE, seed=[3, 1])
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    paths = {}
    for m in modalities:
        img = nib.Nifti1Image(volumes[m].astype(np.float32), affine)
        if edit is not None:
            img = edit(m, img) or img
        paths[m] = folder / f"{m.lower()}.nii.gz"
        nib.save(img, str(paths[m]))
    return paths


def modality_flags(paths):
    return [f"--{m.lower()}={p}" for m, p in paths.items()]


@pytest.fixture(scope="session")
def case_files(tmp_path_factory):
    return write_nifti_case(tmp_path_factory.mktemp("case"))


@pytest.fixture
def copy_of(tmp_path):
    """A copy of a folder (a run, an export) under tmp_path, to damage."""
    def copy(folder, name=None):
        target = tmp_path / (name or pathlib.Path(folder).name)
        shutil.copytree(folder, target)
        return target
    return copy


@contextlib.contextmanager
def _mounted(path, size):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "the disk-full and read-only cases need root or CAP_SYS_ADMIN.")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size="256k", fill=None, readonly=False): a mounted folder. `fill(folder)` writes
    into it before it is made read-only."""
    stack = contextlib.ExitStack()

    def mount(size="256k", fill=None, readonly=False, name="disk"):
        path = stack.enter_context(_mounted(tmp_path / name, size))
        if fill is not None:
            fill(path)
        if readonly:
            done = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True,
                                  text=True)
            if done.returncode:
                pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.strip()}).")
        return path
    with stack:
        yield mount


def fill_disk(folder, leave=0):
    """Fills the file system of `folder` until `leave` bytes (about) are free."""
    free = shutil.disk_usage(folder).free
    with open(pathlib.Path(folder) / "ballast", "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * max(0, free - leave))
