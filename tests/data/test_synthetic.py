import numpy as np
import pytest

from hved_tf.data import synthetic
from hved_tf.io.datasets import discover_subjects
from hved_tf.io.nifti import load_nifti


def test_deterministic_and_label_values():
    a_img, a_lab = synthetic.make_phantom((40, 36, 32), seed=5)
    b_img, b_lab = synthetic.make_phantom((40, 36, 32), seed=5)
    c_img, _ = synthetic.make_phantom((40, 36, 32), seed=6)
    np.testing.assert_array_equal(a_lab, b_lab)
    for m in a_img:
        np.testing.assert_array_equal(a_img[m], b_img[m])
    assert not np.array_equal(a_img["T1"], c_img["T1"])
    assert set(np.unique(a_lab)) == {0, 1, 2, 4}
    _, lab23 = synthetic.make_phantom((40, 36, 32), seed=5,
                                      label_values=(0, 1, 2, 3))
    assert set(np.unique(lab23)) == {0, 1, 2, 3}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrasts_carry_what_each_sequence_carries(seed):
    images, label = synthetic.make_phantom((64, 64, 56), seed=seed)
    brain = images["T1"] > 0
    assert np.all(label[~brain] == 0)                       # tumour inside the brain
    for m in images:
        assert np.all(images[m][~brain] == 0)               # skull-stripped background
    mean = {m: {k: float(images[m][label == k].mean()) for k in (1, 2, 4)} for m in images}
    healthy = {m: float(images[m][brain & (label == 0)].mean()) for m in images}
    assert mean["T1c"][4] > 1.5 * mean["T1c"][2]            # the rim shows in T1c ...
    for m in ("T1", "T2", "FLAIR"):                          # ... and nowhere else
        assert abs(mean[m][4] - mean[m][2]) < 0.2 * mean[m][2]
    for m in ("T2", "FLAIR"):                                # oedema in T2 and FLAIR
        assert mean[m][2] > 1.3 * healthy[m]
    for m in ("T1", "T1c"):                                  # dark necrosis in T1, T1c
        assert mean[m][1] < 0.75 * healthy[m]


def test_written_dataset_is_discovered_and_lps_subjects_load_in_ras(tmp_path):
    ids = synthetic.write_phantom_dataset(tmp_path, 3, (40, 36, 32), seed=1, layout="brats2021")
    subjects = discover_subjects(tmp_path)
    assert [s.id for s in subjects] == ids and all(s.label_path for s in subjects)
    ras, geometry = load_nifti(subjects[2].paths["T1c"])        # subject 3: LPS on disk
    assert geometry.axcodes == "LPS"
    expected, _ = synthetic.make_phantom((40, 36, 32), seed=[1, 3])
    np.testing.assert_allclose(ras, expected["T1c"], rtol=1e-6)
    _, g1 = load_nifti(subjects[0].paths["T1"])
    assert g1.axcodes == "RAS"


def test_bad_shapes():
    with pytest.raises(ValueError, match="Phantom shape"):
        synthetic.make_phantom((16, 40, 40))
    with pytest.raises(ValueError, match="Phantom shape"):
        synthetic.make_phantom((300, 40, 40))
    with pytest.raises(ValueError, match="Unknown layout"):
        synthetic.write_phantom_dataset("/tmp/unused", 1, layout="brats1999")
