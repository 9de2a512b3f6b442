"""Fault matrix, inputs: every damaged or unusual input file is refused before any long work
with one line naming the file and the sequence (or gives a correct result with a warning), and
predict leaves no output folder behind."""
import gzip
import json
import logging

import nibabel as nib
import numpy as np
import pytest

from faults import (FAST, SHAPE, case_files, cli, modality_flags, refused,  # noqa: F401
                    whole_or_nothing, write_nifti_case)


def _header_only(path, **fields):
    """Rewrites the header of an uncompressed .nii in place (the voxel data untouched)."""
    img = nib.load(str(path))
    header = img.header.copy()
    for name, value in fields.items():
        header[name] = value
    with open(path, "r+b") as f:
        f.write(header.binaryblock)


def _as(dtype_or_fn):
    def edit(m, img):
        if m != "T1c":
            return None
        data = np.asanyarray(img.dataobj)
        data = dtype_or_fn(data) if callable(dtype_or_fn) else data.astype(dtype_or_fn)
        return nib.Nifti1Image(data, img.affine)
    return edit


def _rgb(data):
    out = np.zeros(data.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    out["R"] = np.clip(data / data.max() * 255, 0, 255)
    return out


def _with_voxel(value, dtype=np.float32):
    def change(data):
        data = data.astype(dtype)
        data[10, 10, 10] = value
        return data
    return change


def _slope(m, img):
    if m != "T1c":
        return None
    data = np.asanyarray(img.dataobj).astype(np.int16)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_slope_inter(1e38, 0)
    return out


# (case id, how to make the subject's files from a folder, what the error line says)
def _edited(edit, **kw):
    return lambda folder: write_nifti_case(folder, edit=edit, **kw)


def _raw_header(**fields):
    def make(folder):
        paths = write_nifti_case(folder)
        plain = folder / "t1c.nii"
        nib.save(nib.load(str(paths["T1c"])), str(plain))
        _header_only(plain, **fields)
        paths["T1c"].unlink()
        return {**paths, "T1c": plain}
    return make


def _zero_affine(folder):
    return _raw_header(sform_code=1, qform_code=0, srow_x=[0] * 4, srow_y=[0] * 4,
                       srow_z=[0] * 4)(folder)


def _nan_affine(folder):
    return _raw_header(sform_code=1, qform_code=0, srow_x=[np.nan] * 4)(folder)


def _huge(folder):
    return _raw_header(dim=[3, 30000, 30000, 30000, 1, 1, 1, 1])(folder)


def _truncated_gzip(folder):
    paths = write_nifti_case(folder)
    blob = paths["T1c"].read_bytes()
    paths["T1c"].write_bytes(blob[: len(blob) // 2])
    return paths


def _truncated_voxels(folder):
    paths = write_nifti_case(folder)
    raw = gzip.decompress(paths["T1c"].read_bytes())
    paths["T1c"].write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return paths


def _not_nifti(folder):
    paths = write_nifti_case(folder)
    paths["T1c"].write_text("this is a radiology report, not an image\n")
    return paths


def _folder_instead(folder):
    paths = write_nifti_case(folder)
    paths["T1c"].unlink()
    paths["T1c"].mkdir()
    return paths


def _missing(folder):
    paths = write_nifti_case(folder)
    paths["T1c"].unlink()
    return paths


def _far_away(m, img):
    """T1c 200 mm to the right of the others: another exam, or files needing registration."""
    if m == "T1c":
        affine = img.affine.copy()
        affine[0, 3] += 200.0
        return nib.Nifti1Image(np.asanyarray(img.dataobj), affine)
    return None


def _four_d(m, img):
    if m == "T1c":
        data = np.asanyarray(img.dataobj)
        return nib.Nifti1Image(np.stack([data] * 3, axis=-1), img.affine)
    return None


def _two_d(m, img):
    if m == "T1c":
        return nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, 17], img.affine)
    return None


BAD_FILES = [
    ("rgb24", _edited(_as(_rgb)), "colour voxels"),
    ("complex64", _edited(_as(np.complex64)), "complex voxels"),
    ("header_claims_30000_cubed", _huge, "more than this machine's memory"),
    ("all_zero_affine", _zero_affine, "singular"),
    ("nan_affine", _nan_affine, "not finite"),
    ("float64_beyond_float32", _edited(_as(_with_voxel(1e39, np.float64))), "beyond what float32"),
    ("scl_slope_1e38", _edited(_slope), "beyond what float32"),
    ("nan_voxels", _edited(_as(_with_voxel(np.nan))), "NaN or infinite"),
    ("all_zero_image", _edited(_as(np.zeros_like)), "all zeros"),
    ("four_d_series", _edited(_four_d), "expected a 3-D volume"),
    ("two_d_slice", _edited(_two_d), "expected a 3-D volume"),
    ("truncated_gzip", _truncated_gzip, "not a readable NIfTI"),
    ("truncated_voxel_data", _truncated_voxels, "not a readable NIfTI"),
    ("text_file", _not_nifti, "not a readable NIfTI"),
    ("folder_instead_of_file", _folder_instead, "not a file"),
    ("missing_file", _missing, "file not found"),
    ("t1c_far_from_t1", _edited(_far_away), "do not overlap in world space"),
]


@pytest.mark.parametrize("make,message", [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_refused_naming_it_and_its_sequence(tmp_path, cli, tiny_run, make,
                                                          message):
    paths = make(tmp_path / "in")
    out = tmp_path / "out"
    outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={out}", *FAST,
                  *modality_flags(paths))
    line = refused(outcome, 2, paths["T1c"].name, "T1c", message)
    assert len(line) < 600, line
    whole_or_nothing(out, [])


def test_sequences_of_different_exams_are_refused_before_the_model_loads(tmp_path, cli,
                                                                         tiny_run, monkeypatch):
    from hved_tf.inference import loading

    def too_early(*args, **kwargs):
        pytest.fail("the model was loaded before the inputs were checked")
    monkeypatch.setattr(loading, "load_trained", too_early)
    paths = _edited(_far_away)(tmp_path / "in")
    outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}", *FAST,
                  *modality_flags(paths))
    refused(outcome, 2, paths["T1c"].name, "200 mm apart", "registration")


def test_an_extreme_outlier_voxel_gives_a_finite_segmentation(tmp_path, cli, tiny_run):
    """A 1e37 voxel (float32 holds it) must not overflow the intensity chain: the statistics
    are computed in float64 and Nyul's percentiles ignore a single voxel."""
    paths = write_nifti_case(tmp_path / "in", edit=_as(_with_voxel(1e37)))
    out = tmp_path / "out"
    outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={out}", *FAST, "--synth_all",
                  *modality_flags(paths))
    assert outcome.code == 0, outcome
    for name in ("uncertainty.nii.gz", "synth_T1.nii.gz", "synth_T1c.nii.gz"):
        assert np.all(np.isfinite(np.asanyarray(nib.load(str(out / name)).dataobj))), name
    whole = np.isin(np.asanyarray(nib.load(str(out / "seg.nii.gz")).dataobj), (1, 2, 4))
    assert 0 < whole.mean() < 1


def test_pixdim_that_disagrees_with_the_affine_warns_and_volumes_follow_the_affine(
        tmp_path, cli, tiny_run, caplog):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])

    def one_mm_pixdim(m, img):
        img.header["pixdim"][1:4] = 1.0
        return img
    paths = write_nifti_case(tmp_path / "in", affine=affine, edit=one_mm_pixdim)
    assert nib.load(str(paths["T1"])).header.get_zooms()[:3] == (1.0, 1.0, 1.0)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={out}", *FAST,
                      *modality_flags(paths))
    assert outcome.code == 0, outcome
    assert any("pixdim says 1x1x1 mm" in r.getMessage() and "affine 2x2x2" in r.getMessage()
               for r in caplog.records)
    report = json.loads((out / "report.json").read_text())
    seg = np.asanyarray(nib.load(str(out / "seg.nii.gz")).dataobj)
    whole = np.isin(seg, (1, 2, 4)).sum() * 8.0 / 1000.0          # 2 mm voxels: 8 mm^3
    assert report["tumour_volume_ml"]["whole_tumour"] == pytest.approx(whole, abs=0.01)


def test_qform_and_sform_that_disagree_warn_and_say_which_is_used(tmp_path, cli, tiny_run,
                                                                  caplog):
    def two_forms(m, img):
        img.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), 1)
        img.set_sform(np.diag([1.0, 1.0, 1.0, 1.0]) + np.eye(4, k=3) * 5, 2)   # shifted 5 mm
        return img
    paths = write_nifti_case(tmp_path / "in", edit=two_forms)
    with caplog.at_level(logging.WARNING, logger="hved_tf"):
        outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}", *FAST,
                      *modality_flags(paths))
    assert outcome.code == 0, outcome
    assert any("qform and sform disagree; using the sform" in r.getMessage()
               for r in caplog.records)
    written = nib.load(str(tmp_path / "out" / "seg.nii.gz"))
    np.testing.assert_allclose(written.affine, nib.load(str(paths["T1"])).affine)


def test_a_bad_label_file_in_evaluate_is_refused_naming_it(tmp_path, cli, tiny_run):
    from hved_tf.data.synthetic import write_phantom_dataset

    root = tmp_path / "data"
    write_phantom_dataset(root, 1, (32, 32, 32), seed=5)
    label = next(root.rglob("*seg.nii.gz"))
    img = nib.load(str(label))
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj).astype(np.float32) + 0.5, img.affine),
             str(label))
    outcome = cli("evaluate", f"--model={tiny_run}", f"--data_root={root}", "--subsets=T1c",
                  f"--out_dir={tmp_path / 'eval'}", f"--cache_dir={tmp_path / 'cache'}", *FAST)
    refused(outcome, 2, label.name, "integers")
    whole_or_nothing(tmp_path / "eval", [])


def test_an_input_too_big_once_at_the_model_voxel_size_is_refused_with_its_size(tmp_path, cli,
                                                                                tiny_run):
    """Voxels of 100 mm (a damaged header, or another unit): at the 1 mm model's voxel size
    the volume would be 3300x3800x3500 voxels (over 1 TB to process). One line gives the size
    and a way out; nothing is written."""
    paths = write_nifti_case(tmp_path / "in", affine=np.diag([100.0, 100.0, 100.0, 1.0]))
    out = tmp_path / "out"
    outcome = cli("predict", f"--model={tiny_run}", f"--out_dir={out}", *FAST,
                  *modality_flags(paths))
    refused(outcome, 2, "3300x3800x3500 voxels", "GB", "Crop the image")
    whole_or_nothing(out, [])
