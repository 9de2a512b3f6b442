"""The cache at scale: float16 entries (half the bytes, values within float16 rounding of the
float32 chain), preparation in worker processes (the same entries as one process; bad subjects
refused or skipped as in one process), and `python -m hved_tf.prepare` interrupted leaving no
partial entry."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from hved_tf.data import cache as cache_lib
from hved_tf.data.synthetic import write_phantom_dataset
from hved_tf.io.datasets import discover_subjects
from hved_tf.modalities import MODALITIES


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    write_phantom_dataset(root, 4, (40, 36, 34), seed=9, layout="brats2020")
    return discover_subjects(root)


LANDMARKS = {m: np.linspace(0, 100, 13) + i for i, m in enumerate(MODALITIES)}


def _bytes(entry):
    return sum(p.stat().st_size for p in entry.iterdir() if p.name == "image.npy")


def test_float16_entries_hold_the_float32_chain_rounded_in_half_the_bytes(subjects, tmp_path):
    half = cache_lib.SubjectCache(tmp_path / "c", LANDMARKS)            # the default
    full = cache_lib.SubjectCache(tmp_path / "c", LANDMARKS, dtype="float32")
    assert half.dtype == "float16" and half.entry(subjects[0]) != full.entry(subjects[0])
    a, b = half.get(subjects[0]), full.get(subjects[0])
    assert a.image.dtype == np.float16 and b.image.dtype == np.float32
    reference = cache_lib.prepare_subject(subjects[0], LANDMARKS).image
    np.testing.assert_array_equal(b.image, reference)
    np.testing.assert_array_equal(a.image, reference.astype(np.float16))   # round to nearest
    assert np.max(np.abs(a.image.astype(np.float32) - reference)) <= \
        np.max(np.abs(reference)) * 2.0 ** -11
    ratio = _bytes(half.entry(subjects[0])) / _bytes(full.entry(subjects[0]))
    assert 0.49 < ratio < 0.51
    # The padding/background value is the stored minimum, so "> minimum" still finds the brain.
    np.testing.assert_array_equal(a.minimum, a.image.reshape(-1, 4).min(0).astype(np.float32))
    with pytest.raises(ValueError, match="--cache_dtype"):
        cache_lib.SubjectCache(tmp_path / "c", LANDMARKS, dtype="int8")


def test_two_workers_write_the_entries_one_process_writes(subjects, tmp_path):
    one = cache_lib.SubjectCache(tmp_path / "one", LANDMARKS).prepare_all(subjects)
    seen = []
    two = cache_lib.SubjectCache(tmp_path / "two", LANDMARKS).prepare_all(
        subjects, workers=2, progress=lambda done, total, sid: seen.append((done, total)))
    assert [s.id for s in two] == [s.id for s in one]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.label, b.label)
        assert a.box == b.box
    assert sorted(seen) == [(k, len(subjects)) for k in range(1, len(subjects) + 1)]


def test_a_bad_subject_in_a_worker_is_refused_or_skipped(subjects, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"garbage")
    bad = subjects[1]
    bad = type(bad)(bad.id, {**bad.paths, "T2": broken}, bad.label_path, bad.layout)
    group = [subjects[0], bad, subjects[2]]
    cache = cache_lib.SubjectCache(tmp_path / "c", LANDMARKS)
    with pytest.raises(ValueError, match="broken.nii.gz"):
        cache.prepare_all(group, workers=2)
    skipped = []
    kept = cache.prepare_all(group, on_error="skip", workers=2, skipped=skipped)
    assert [s.id for s in kept] == [subjects[0].id, subjects[2].id]
    assert [s["id"] for s in skipped] == [bad.id] and "broken.nii.gz" in skipped[0]["reason"]
    with pytest.raises(ValueError, match="--prepare_workers"):
        cache.prepare_all(group, workers=0)


@pytest.mark.slow
def test_prepare_interrupted_leaves_only_whole_entries_and_resumes(tmp_path):
    args = [sys.executable, "-m", "hved_tf.prepare", "--data_root=demo", "--demo_subjects=12",
            "--demo_shape=64,64,64", f"--run_dir={tmp_path / 'run'}", "--prepare_workers=2"]
    entries = tmp_path / "cache" / "subjects"
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(entries.glob("*/meta.json")):
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, out + err
    assert "Traceback" not in err, err
    assert "interrupted" in err
    folders = [p for p in entries.iterdir() if not p.name.startswith(".")]
    assert folders and len(folders) < 12, (out, err)          # stopped part of the way
    for folder in folders:                                     # every entry whole
        meta = json.loads((folder / "meta.json").read_text())
        cache_lib.SubjectCache._load(folder)
        assert meta["files"]["image"]["dtype"] == "float16"
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cache ready: 12 subjects" in done.stdout
    assert len([p for p in entries.iterdir() if not p.name.startswith(".")]) == 12
    assert not [p for p in entries.iterdir() if p.name.startswith(".")]   # no leftovers
