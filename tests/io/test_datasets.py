import nibabel as nib
import numpy as np
import pytest

from hved_tf.io import datasets


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4)), str(path))


LAYOUT_FILES = {
    "brats2018": ("HGG/Brats18_TCIA01_190_1/Brats18_TCIA01_190_1_{}.nii.gz",
                  ["t1", "t1ce", "t2", "flair", "seg"], "Brats18_TCIA01_190_1"),
    "brats2020": ("BraTS20_Training_001/BraTS20_Training_001_{}.nii.gz",
                  ["t1", "t1ce", "t2", "flair", "seg"], "BraTS20_Training_001"),
    "brats2021": ("BraTS2021_00000/BraTS2021_00000_{}.nii.gz",
                  ["t1", "t1ce", "t2", "flair", "seg"], "BraTS2021_00000"),
    "brats2023": ("BraTS-GLI-00000-000/BraTS-GLI-00000-000-{}.nii.gz",
                  ["t1n", "t1c", "t2w", "t2f", "seg"], "BraTS-GLI-00000-000"),
    "release": ("HGG12_{}.nii.gz", ["T1", "T1c", "T2", "Flair", "Label"], "HGG12"),
}


@pytest.mark.parametrize("layout", list(LAYOUT_FILES))
def test_each_layout_is_found(tmp_path, layout):
    pattern, suffixes, sid = LAYOUT_FILES[layout]
    for s in suffixes:
        _touch(tmp_path / pattern.format(s))
    # A second subject without T1c and FLAIR, a third without a label.
    second = pattern.replace(sid, sid[:-1] + "7")
    for s in (suffixes[0], suffixes[2], suffixes[4]):
        _touch(tmp_path / second.format(s))
    third = pattern.replace(sid, sid[:-1] + "8")
    for s in suffixes[:4]:
        _touch(tmp_path / third.format(s))
    subjects = datasets.discover_subjects(tmp_path)
    assert [s.layout for s in subjects] == [layout] * 3
    by_id = {s.id: s for s in subjects}
    full = by_id[sid]
    assert list(full.paths) == ["T1", "T1c", "T2", "FLAIR"] and full.label_path is not None
    partial = by_id[sid[:-1] + "7"]
    np.testing.assert_array_equal(partial.available, [1, 0, 1, 0])
    assert by_id[sid[:-1] + "8"].label_path is None
    assert full.label_convention == ("brats2023" if layout == "brats2023" else "brats2018")


def test_empty_root_and_duplicates(tmp_path):
    with pytest.raises(ValueError, match="No BraTS-named NIfTI"):
        datasets.discover_subjects(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        datasets.discover_subjects(tmp_path / "nope")
    _touch(tmp_path / "a" / "HGG1_T1.nii.gz")
    _touch(tmp_path / "b" / "HGG1_T1.nii.gz")
    with pytest.raises(ValueError, match="two T1 files"):
        datasets.discover_subjects(tmp_path)


def test_release_split_files(reference):
    split = datasets.read_release_split(reference / "splits" / "dataset_split_1.csv")
    counts = {part: list(split.values()).count(part) for part in ("train", "validation", "test")}
    assert counts == {"train": 199, "validation": 29, "test": 57}
    mapped = datasets.read_release_split(reference / "splits" / "dataset_split_1.csv",
                                         reference / "splits" / "corresponding_naming.csv")
    assert len(mapped) == 285 and all(k.startswith("Brats18_") for k in mapped)


def test_release_split_format(tmp_path):
    (tmp_path / "split.csv").write_text("HGG1_,Training\nHGG2_,Validation\nLGG1_,Inference\n")
    (tmp_path / "naming.csv").write_text(
        "name,folder\nHGG1,HGG_Brats18_A_1\nHGG2,HGG_Brats18_B_1\nLGG1,LGG_Brats18_C_1\n")
    assert datasets.read_release_split(tmp_path / "split.csv") == {
        "HGG1": "train", "HGG2": "validation", "LGG1": "test"}
    assert datasets.read_release_split(tmp_path / "split.csv", tmp_path / "naming.csv") == {
        "Brats18_A_1": "train", "Brats18_B_1": "validation", "Brats18_C_1": "test"}
    (tmp_path / "bad.csv").write_text("HGG1_,Tuesday\n")
    with pytest.raises(ValueError, match="bad.csv, line 1"):
        datasets.read_release_split(tmp_path / "bad.csv")


def test_kfold_proportions_and_determinism():
    ids = [f"s{i:03d}" for i in range(285)]
    split = datasets.kfold_split(ids, fold=0, seed=3)
    counts = {p: list(split.values()).count(p) for p in ("train", "validation", "test")}
    assert counts == {"train": 199, "validation": 29, "test": 57}
    assert split == datasets.kfold_split(ids, fold=0, seed=3)
    tests = [{k for k, v in datasets.kfold_split(ids, f, seed=3).items() if v == "test"}
             for f in range(3)]
    assert not (tests[0] & tests[1]) and not (tests[1] & tests[2])
    with pytest.raises(ValueError):
        datasets.kfold_split(ids, fold=3, folds=3)


def test_apply_split_and_unknown_ids(tmp_path):
    for sid in ("HGG1", "HGG2"):
        _touch(tmp_path / f"{sid}_T1.nii.gz")
    subjects = datasets.discover_subjects(tmp_path)
    parts = datasets.apply_split(subjects, {"HGG1": "train", "HGG2": "test"})
    assert [s.id for s in parts["train"]] == ["HGG1"] and parts["validation"] == []
    with pytest.raises(ValueError, match="not found in the data: HGG9"):
        datasets.apply_split(subjects, {"HGG9": "train"})
    (tmp_path / "ids.txt").write_text("HGG1\n# comment\n\nHGG2  # trailing\n")
    assert datasets.read_id_list(tmp_path / "ids.txt") == ["HGG1", "HGG2"]


def test_files_named_as_brats2023_follow_its_label_convention(tmp_path):
    folder = tmp_path / "BraTS-GLI-00007-000"
    for suffix in ("t1c", "t2f"):
        _touch(folder / f"BraTS-GLI-00007-000-{suffix}.nii.gz")
    subject = datasets.subject_from_files({"T1c": folder / "BraTS-GLI-00007-000-t1c.nii.gz",
                                           "FLAIR": folder / "BraTS-GLI-00007-000-t2f.nii.gz"})
    assert subject.id == "BraTS-GLI-00007-000" and subject.label_convention == "brats2023"
    _touch(tmp_path / "p" / "t1c.nii.gz")
    plain = datasets.subject_from_files({"T1c": tmp_path / "p" / "t1c.nii.gz"})
    assert plain.label_convention == "brats2018"                   # unknown names: 0/1/2/4
