"""Anatomical phantoms: built on nilearn's bundled MNI152 templates (skipped with a message when
nilearn is absent), their labels and contrasts as the module says, scanner profiles, the
dataset written in BraTS 2023 layout, and clear refusals."""
import importlib.util

import numpy as np
import pytest

from hved_tf.data import anatomy

needs_nilearn = pytest.mark.skipif(importlib.util.find_spec("nilearn") is None,
                                   reason="nilearn (the MNI152 templates) is not installed")


@needs_nilearn
def test_tissue_maps_are_fractions_of_the_template_brain():
    maps = anatomy.tissue_maps(4.0)
    total = maps["csf"] + maps["gm"] + maps["wm"]
    assert maps["wm"].shape == (49, 58, 47)                     # 197x233x189 at 1 mm, / 4
    assert np.all(total <= 1.0 + 1e-5) and np.all(maps["csf"] >= -1e-6)
    brain = total > 0.5
    assert 0.1 < brain.mean() < 0.4
    assert maps["wm"][brain].mean() > 0.25 and maps["gm"][brain].mean() > 0.25


@needs_nilearn
@pytest.mark.parametrize("seed", [1, 2, 5])
def test_phantom_labels_and_contrasts(seed):
    images, label = anatomy.make_anatomical_phantom([0, seed], voxel_mm=3.0)
    maps = anatomy.tissue_maps(3.0)
    assert label.shape == maps["wm"].shape and set(np.unique(label)) <= {0, 1, 2, 3}
    assert (label == 2).sum() > 0 and (label == 1).sum() > 0
    brain = images["T1"] > 0
    for image in images.values():
        assert np.all(image >= 0) and np.array_equal(image > 0, brain)   # skull-stripped
    assert not (label[~brain]).any()
    healthy = brain & (label == 0)
    wm, gm = healthy & (maps["wm"] > 0.95), healthy & (maps["gm"] > 0.8)
    med = {m: (np.median(images[m][wm]), np.median(images[m][gm])) for m in images}
    assert med["T1"][0] > med["T1"][1] and med["T2"][0] < med["T2"][1]    # WM vs GM
    oedema = label == 2
    for m in ("T2", "FLAIR"):
        assert np.median(images[m][oedema]) > np.median(images[m][wm])   # oedema bright
    if (label == 3).sum() > 20:
        core, et = label == 1, label == 3
        assert np.median(images["T1c"][et]) > 1.5 * np.median(images["T1c"][core])
        for m in ("T1", "T2", "FLAIR"):                 # only T1c tells them apart
            ratio = np.median(images[m][et]) / np.median(images[m][core])
            assert 0.75 < ratio < 1.33, (m, ratio)


@needs_nilearn
def test_some_cases_have_no_enhancement_and_seeds_reproduce():
    counts = [int((anatomy.make_anatomical_phantom([3, s], 4.0)[1] == 3).sum())
              for s in range(12)]
    assert 0 in counts and sum(c > 0 for c in counts) >= 6
    a = anatomy.make_anatomical_phantom([3, 1], 4.0)
    b = anatomy.make_anatomical_phantom([3, 1], 4.0)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0]["FLAIR"], b[0]["FLAIR"])


@needs_nilearn
def test_dataset_in_brats2023_layout_with_profiles(tmp_path):
    from hved_tf.io.datasets import discover_subjects
    from hved_tf.io.nifti import load_nifti, read_geometry
    ids = anatomy.write_anatomical_dataset(tmp_path / "d", 3, voxel_mm=4.0, seed=2)
    subjects = discover_subjects(tmp_path / "d")
    assert [s.id for s in subjects] == ids == [f"BraTS-GLI-0000{i}-000" for i in (1, 2, 3)]
    assert all(s.label_convention == "brats2023" for s in subjects)
    geometry = read_geometry(subjects[2].label_path)
    assert geometry.axcodes == "LPS" and np.allclose(geometry.ras_zooms, 4.0)
    label, _ = load_nifti(subjects[0].label_path, kind="label")
    assert set(np.unique(label)) <= {0, 1, 2, 3}
    bright = anatomy.write_anatomical_dataset(tmp_path / "b", 1, voxel_mm=4.0, seed=2,
                                              profile="bright_biased")
    plain_t1 = load_nifti(subjects[0].paths["T1"])[0]
    bright_t1 = load_nifti(discover_subjects(tmp_path / "b")[0].paths["T1"])[0]
    assert bright == ids[:1]
    assert np.mean(bright_t1[bright_t1 > 0]) > 1.8 * np.mean(plain_t1[plain_t1 > 0])


def test_bad_options_and_a_missing_install_are_refused(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="--demo_voxel_mm"):
        anatomy.tissue_maps(0.5)
    with pytest.raises(ValueError, match="Unknown scanner profile"):
        anatomy.write_anatomical_dataset(tmp_path, 1, profile="nope")
    with pytest.raises(ValueError, match="out of range"):
        anatomy.ScannerProfile(noise=2.0).validate()
    monkeypatch.setattr(anatomy.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install 'nilearn"):
        anatomy.template_paths()

    class Spec:                                   # an install without its data files
        submodule_search_locations = [str(tmp_path / "nilearn")]
    monkeypatch.setattr(anatomy.importlib.util, "find_spec", lambda name: Spec())
    with pytest.raises(ValueError, match="no bundled MNI152 2009.*force-reinstall"):
        anatomy.template_paths()


@needs_nilearn
def test_subjects_differ_in_head_size_pose_and_position():
    maps = anatomy.tissue_maps(4.0)
    template = (maps["csf"] + maps["gm"] + maps["wm"]) > 0.5
    brains = [anatomy.make_anatomical_phantom([4, s], 4.0)[0]["T1"] > 0 for s in range(3)]
    for brain in brains:
        assert 0.7 < brain.sum() / template.sum() < 1.4     # 0.9-1.1 per axis: 0.73-1.33
    overlaps = [np.sum(a & b) / np.sum(a | b) for i, a in enumerate(brains)
                for b in brains[i + 1:]]
    assert max(overlaps) < 0.9, overlaps                    # no two share the template's place
