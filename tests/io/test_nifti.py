import nibabel as nib
import numpy as np
import pytest

from hved_tf.io.nifti import load_nifti, save_nifti
from hved_tf.preprocessing.grids import same_grid


def _write(path, data, affine, qcode=1, scode=1):
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, qcode)
    img.set_sform(affine, scode)
    img.header.set_zooms((1.0, 1.2, 2.5)[: data.ndim])
    nib.save(img, str(path))
    return path


LPS = np.array([[-1.0, 0, 0, 120], [0, -1.2, 0, 100], [0, 0, 2.5, -50], [0, 0, 0, 1]])
PERMUTED = np.array([[0, 0, 2.5, 1], [-1.0, 0, 0, 2], [0, 1.2, 0, 3], [0, 0, 0, 1]])


@pytest.mark.parametrize("affine", [LPS, PERMUTED, np.diag([1.0, 1.2, 2.5, 1])])
def test_round_trip_keeps_geometry(tmp_path, affine):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(7, 8, 9)).astype(np.float32)
    src = _write(tmp_path / "in.nii.gz", data, affine)
    ras, geometry = load_nifti(src)
    assert "".join(nib.aff2axcodes(geometry.ras_affine)) == "RAS"
    # The same voxel has the same world position before and after reorientation.
    ijk = np.array([1, 2, 3])
    world = affine[:3, :3] @ ijk + affine[:3, 3]
    ras_ijk = np.linalg.solve(geometry.ras_affine[:3, :3], world - geometry.ras_affine[:3, 3])
    assert ras[tuple(np.rint(ras_ijk).astype(int))] == data[1, 2, 3]
    out = save_nifti(tmp_path / "out.nii.gz", ras * 2, geometry)
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), data * 2)
    assert back.header.get_zooms() == nib.load(str(src)).header.get_zooms()
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii.gz", "out.nii.gz"]


def test_labels_written_as_integers(tmp_path):
    data = np.zeros((6, 6, 6), np.int16); data[2:4, 2:4, 2:4] = 4
    _, geometry = load_nifti(_write(tmp_path / "seg.nii.gz", data, LPS), kind="label")
    ras, _ = load_nifti(tmp_path / "seg.nii.gz", kind="label")
    out = nib.load(str(save_nifti(tmp_path / "o.nii.gz", ras, geometry, kind="label")))
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), data)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        load_nifti(tmp_path / "missing.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="junk.nii.gz: not a readable NIfTI"):
        load_nifti(tmp_path / "junk.nii.gz")
    bad = np.ones((4, 4, 4), np.float32); bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        load_nifti(_write(tmp_path / "nan.nii.gz", bad, LPS))
    with pytest.raises(ValueError, match="all zeros"):
        load_nifti(_write(tmp_path / "zero.nii.gz", np.zeros((4, 4, 4), np.float32), LPS))
    img = nib.Nifti1Image(np.ones((4, 4, 4, 3), np.float32), LPS)
    nib.save(img, str(tmp_path / "four.nii.gz"))
    with pytest.raises(ValueError, match="four.nii.gz: expected a 3-D volume"):
        load_nifti(tmp_path / "four.nii.gz")


def test_same_grid_compares_the_voxels_in_ras_order(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) + 1
    _, a = load_nifti(_write(tmp_path / "a.nii.gz", data, LPS))
    _, b = load_nifti(_write(tmp_path / "b.nii.gz", data[:, :, :5], LPS))
    _, c = load_nifti(_write(tmp_path / "c.nii.gz", data, PERMUTED))
    # the same voxels stored in RAS order: x and y reversed, the affine's columns negated
    ras = LPS @ np.array([[-1.0, 0, 0, 3], [0, -1, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1]])
    _, d = load_nifti(_write(tmp_path / "d.nii.gz", data[::-1, ::-1].copy(), ras))
    assert same_grid(a, d) and same_grid(a, a)
    assert not same_grid(a, b) and not same_grid(a, c)
