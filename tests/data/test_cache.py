"""Preparing subjects from files, and the on-disk cache."""
import os

import numpy as np
import pytest

from hved_tf.data.synthetic import write_phantom_dataset
from hved_tf.io.datasets import discover_subjects
from hved_tf.modalities import MODALITIES
from hved_tf.data import cache as cache_lib
from hved_tf.preprocessing.histogram import train_landmarks

SHAPE = (40, 36, 34)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    write_phantom_dataset(root, 3, SHAPE, seed=4, layout="brats2020")
    # Subject 2 loses its T1c: a subject with a missing modality.
    next(root.glob("BraTS20_Training_002/*_t1ce.nii.gz")).unlink()
    subjects = discover_subjects(root)
    return root, subjects


def _landmarks(subjects):
    return {m: np.linspace(0, 100, 13) + i for i, m in enumerate(MODALITIES)}


def test_prepare_subject(dataset):
    _, subjects = dataset
    prepared = cache_lib.prepare_subject(subjects[1], _landmarks(subjects))
    np.testing.assert_array_equal(prepared.available, [1, 0, 1, 1])
    assert prepared.image.dtype == np.float32 and prepared.image.shape[-1] == 4
    assert not prepared.image[..., 1].any()                # missing modality stays zeros
    assert set(np.unique(prepared.label)) <= {0, 1, 2, 3} and prepared.label.max() == 3
    assert prepared.image.shape[:3] == prepared.label.shape == prepared.box.shape
    counts = [len(i) for i in prepared.class_indices]
    assert counts[1:] == [int((prepared.label == c).sum()) for c in (1, 2, 3)]


def test_cache_reuses_entries_and_keys_on_settings(dataset, tmp_path):
    _, subjects = dataset
    cache = cache_lib.SubjectCache(tmp_path / "cache", _landmarks(subjects))
    first = cache.get(subjects[0])
    assert isinstance(first.image, np.memmap)
    entry = cache.entry(subjects[0])
    stamp = os.stat(entry / "image.npy").st_mtime_ns
    again = cache.get(subjects[0])
    assert os.stat(entry / "image.npy").st_mtime_ns == stamp        # not prepared twice
    np.testing.assert_array_equal(again.image, first.image)
    other = cache_lib.SubjectCache(tmp_path / "cache", _landmarks(subjects), padding=5)
    assert other.entry(subjects[0]) != entry
    assert first.box == again.box


def test_cache_never_keeps_a_partial_entry(dataset, tmp_path, monkeypatch):
    _, subjects = dataset
    cache = cache_lib.SubjectCache(tmp_path / "cache", _landmarks(subjects))
    real_save = np.save
    calls = []

    def failing_save(path, array, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(path, array, *a, **k)

    monkeypatch.setattr(cache_lib.np, "save", failing_save)
    with pytest.raises(ValueError, match="Cannot write .*disk full"):   # OutputError
        cache.get(subjects[0])
    assert list((tmp_path / "cache").iterdir()) == []


def test_bad_subject_is_skipped_or_fails(dataset, tmp_path):
    root, subjects = dataset
    bad = subjects[2]
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"garbage")
    bad = type(bad)(bad.id, {**bad.paths, "T2": broken}, bad.label_path, bad.layout)
    cache = cache_lib.SubjectCache(tmp_path / "cache", _landmarks(subjects))
    with pytest.raises(ValueError, match="broken.nii.gz"):
        cache.prepare_all([subjects[0], bad])
    kept = cache.prepare_all([subjects[0], bad], on_error="skip")
    assert [s.id for s in kept] == [subjects[0].id]


def test_landmarks_train_on_phantoms(dataset):
    _, subjects = dataset
    from hved_tf.io.nifti import load_nifti
    images = []
    for s in subjects:                       # raw intensities, a missing T1c as zeros
        image = np.zeros((*SHAPE, 4), np.float32)
        for i, m in enumerate(MODALITIES):
            if m in s.paths:
                image[..., i] = load_nifti(s.paths[m])[0]
        images.append(image)
    landmarks = train_landmarks(images)
    assert set(landmarks) == set(MODALITIES)
    for v in landmarks.values():
        assert v[0] == pytest.approx(0) and v[-1] == pytest.approx(100)
        assert np.all(np.diff(v) >= 0) and v[6] > v[1]


def test_label_outside_convention_names_the_file(dataset, tmp_path):
    import nibabel as nib
    _, subjects = dataset
    subject = subjects[0]
    img = nib.load(str(subject.label_path))
    data = np.asanyarray(img.dataobj).copy()
    data[data == 4] = 3                          # 3 is not a BraTS 2018 label
    bad = tmp_path / "bad_seg.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), str(bad))
    subject = type(subject)(subject.id, subject.paths, bad, subject.layout)
    with pytest.raises(ValueError, match="bad_seg.nii.gz: label values \\[3\\]"):
        cache_lib.prepare_subject(subject, _landmarks(subjects))


def test_make_phantoms_tool(tmp_path):
    from conftest import tool_module
    tool = tool_module("tools/dev/make_phantoms.py")
    assert tool.main(["--out", str(tmp_path), "--n", "2", "--shape", "32,32,32",
                      "--layout", "brats2023"]) == 0
    subjects = discover_subjects(tmp_path)
    assert [s.layout for s in subjects] == ["brats2023"] * 2
    with pytest.raises(SystemExit):
        tool.main(["--out", str(tmp_path), "--shape", "32,32"])
