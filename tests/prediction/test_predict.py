"""hved_tf.predict: outputs in the input's geometry and label convention; bad input refused."""
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_run_dir
from hved_tf.data.synthetic import make_phantom
from hved_tf.config import InferenceOptions, PredictConfig
from hved_tf.inference.loading import keras_segmenter, load_trained, open_segmenter
from hved_tf.modalities import MODALITIES
from hved_tf.io.datasets import subject_from_files
from hved_tf.prediction.app import check_out_dir, predict_subject

SHAPE = (33, 38, 35)
OPTIONS = InferenceOptions(window=(32, 32, 32), overlap=0.5, num_samples=1)


def write_case(folder, affine, transform=lambda a: a, modalities=MODALITIES):
    volumes, label = make_phantom(SHAPE, seed=[3, 1])
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for m in modalities:
        path = folder / f"{m.lower()}.nii.gz"
        nib.save(nib.Nifti1Image(transform(volumes[m]).astype(np.float32), affine), str(path))
        paths[m] = path
    return paths


def ras_affine():
    return np.diag([1.2, 1.0, 1.5, 1.0])


def lps_permuted():
    """Disk axes (S, P, L) of the RAS array: transpose (2, 1, 0), flip the new 2nd and 3rd."""
    def transform(a):
        return np.transpose(a, (2, 1, 0))[:, ::-1, ::-1]
    A = ras_affine()
    # disk index (k', j', i') -> RAS voxel (i, j, k) = (X-1-i', Y-1-j', k')
    nx, ny = SHAPE[0], SHAPE[1]
    to_ras_index = np.array([[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0],
                             [0, 0, 0, 1]], float)
    return A @ to_ras_index, transform


@pytest.fixture(scope="module")
def trained(tiny_run):
    return load_trained(tiny_run)


def test_non_ras_input_gives_the_same_segmentation_in_its_own_geometry(tmp_path, trained):
    ras_paths = write_case(tmp_path / "ras", ras_affine())
    affine, transform = lps_permuted()
    odd_paths = write_case(tmp_path / "odd", affine, transform)
    assert nib.aff2axcodes(affine) != ("R", "A", "S")
    r1 = predict_subject(keras_segmenter(trained, OPTIONS), subject_from_files(ras_paths),
                         tmp_path / "o1", PredictConfig(synth_all=True))
    r2 = predict_subject(keras_segmenter(trained, OPTIONS), subject_from_files(odd_paths),
                         tmp_path / "o2", PredictConfig(synth_all=True,
                                                        label_convention="brats2023"))
    ref = nib.load(str(odd_paths["T1"]))
    for name in ("seg.nii.gz", "uncertainty.nii.gz", "synth_T1.nii.gz"):
        out = nib.load(str(tmp_path / "o2" / name))
        assert out.shape == ref.shape
        np.testing.assert_allclose(out.affine, ref.affine)
        assert nib.aff2axcodes(out.affine) == nib.aff2axcodes(ref.affine)
        # The same voxels as the RAS case once both are brought to RAS.
        a = np.asanyarray(nib.as_closest_canonical(out).dataobj)
        b = np.asanyarray(nib.as_closest_canonical(nib.load(str(tmp_path / "o1" / name))).dataobj)
        if name == "seg.nii.gz":   # brats2023 writes 3 where brats2018 writes 4
            b = np.where(b == 4, 3, b)
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert r1["label_convention"] == "brats2018" and r2["label_convention"] == "brats2023"
    assert r2["label_values"]["enhancing"] == 3
    assert set(r1["synthesised"]) == set(MODALITIES)
    report = json.loads((tmp_path / "o1" / "report.json").read_text())
    assert report["modalities_used"] == list(MODALITIES)
    assert report["model"]["sha256"] == trained.identity["sha256"]
    seg = np.asanyarray(nib.load(str(tmp_path / "o1" / "seg.nii.gz")).dataobj)
    voxel_ml = 1.2 * 1.0 * 1.5 / 1000
    # Volumes are reported to 0.01 ml.
    assert report["tumour_volume_ml"]["whole_tumour"] == round(
        np.isin(seg, [1, 2, 4]).sum() * voxel_ml, 2)


def test_missing_modalities_are_synthesised_with_uncertainty(tmp_path, trained):
    paths = write_case(tmp_path / "in", ras_affine(), modalities=("T1c", "FLAIR"))
    options = InferenceOptions(window=(32, 32, 32), overlap=0.0, num_samples=3)
    report = predict_subject(keras_segmenter(trained, options), subject_from_files(paths),
                             tmp_path / "out", PredictConfig(probabilities=True, figure=True))
    assert report["subset"] == "T1c+FLAIR" and report["synthesised"] == ["T1", "T2"]
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"seg.nii.gz", "synth_T1.nii.gz", "synth_T2.nii.gz", "uncertainty.nii.gz",
            "variance.nii.gz", "prob_background.nii.gz", "prob_necrotic_core.nii.gz",
            "prob_oedema.nii.gz", "prob_enhancing.nii.gz", "figure.png", "report.json"} == names
    probs = [np.asanyarray(nib.load(str(tmp_path / "out" / f"prob_{c}.nii.gz")).dataobj)
             for c in ("background", "necrotic_core", "oedema", "enhancing")]
    np.testing.assert_allclose(np.sum(probs, axis=0), 1.0, atol=1e-5)
    entropy = np.asanyarray(nib.load(str(tmp_path / "out" / "uncertainty.nii.gz")).dataobj)
    assert entropy.min() >= 0 and entropy.max() <= np.log(4) + 1e-5
    variance = np.asanyarray(nib.load(str(tmp_path / "out" / "variance.nii.gz")).dataobj)
    assert variance.min() >= 0 and variance.max() > 0


def test_bad_inputs_are_refused(tmp_path, trained):
    with pytest.raises(ValueError, match="No modality given"):
        subject_from_files({})
    paths = write_case(tmp_path / "a", ras_affine(), modalities=("T1",))
    with pytest.raises(ValueError, match="both T1 and T2"):
        subject_from_files({"T1": paths["T1"], "T2": paths["T1"]})
    other = tmp_path / "b" / "t2.nii.gz"
    other.parent.mkdir()
    far = ras_affine()
    far[2, 3] = 300.0
    nib.save(nib.Nifti1Image(np.ones((33, 38, 34), np.float32), far), str(other))
    with pytest.raises(ValueError, match="do not overlap in world space"):
        predict_subject(keras_segmenter(trained, OPTIONS),
                        subject_from_files({"T1": paths["T1"], "T2": other}),
                        tmp_path / "o")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "seg.nii.gz").write_bytes(b"x")
    with pytest.raises(ValueError, match="--overwrite"):
        check_out_dir(tmp_path / "earlier", overwrite=False)
    check_out_dir(tmp_path / "earlier", overwrite=True)


def test_unet_refuses_another_subset(tmp_path):
    run = make_run_dir(tmp_path / "unet", name="unet", subset="T1c+FLAIR")
    paths = write_case(tmp_path / "in", ras_affine(), modalities=("T1", "T1c", "FLAIR"))
    with pytest.raises(ValueError, match="trained on T1c\\+FLAIR"):
        predict_subject(keras_segmenter(load_trained(run), OPTIONS), subject_from_files(paths), tmp_path / "o")


def test_model_files_that_are_not_ours(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a model saved by hved_tf"):
        load_trained(bad)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ValueError, match="not a training run folder"):
        load_trained(tmp_path / "empty_run")
    run = make_run_dir(tmp_path / "run")
    (run / "model.weights.h5").unlink()
    with pytest.raises(ValueError, match="no finished model"):
        load_trained(run)


def test_cli_end_to_end_and_exit_codes(tmp_path, tiny_run, cli):
    """In this process (hved-predict as a real process: tests/test_cli.py)."""
    paths = write_case(tmp_path / "in", ras_affine(), modalities=("T2", "FLAIR"))
    base = [f"--model={tiny_run}", f"--out_dir={tmp_path / 'out'}", "--samples=2"]
    args = base + [f"--t2={paths['T2']}", f"--flair={paths['FLAIR']}"]
    done = cli("predict", *args)
    assert done.code == 0, done
    assert "T2+FLAIR" in done.out
    assert (tmp_path / "out" / "synth_T1c.nii.gz").is_file()
    again = cli("predict", *args)
    assert again.code == 2 and "--overwrite" in again.err, again
    none = cli("predict", *base)
    assert none.code == 2 and "No modality given" in none.err, none
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_sequences_on_their_own_grids_and_voxel_sizes(tmp_path, trained):
    """T1c on a 1 mm grid, FLAIR on a 0.5x0.5x3 mm one covering the same head: the outputs lie
    on the finest grid (or --reference_sequence's), the 1 mm model ran at its own voxel size,
    and the report says so."""
    from hved_tf.config import GridOptions
    from hved_tf.preprocessing.resample import SpacingChange

    volumes, _ = make_phantom(SHAPE, seed=[3, 1])
    folder = tmp_path / "in"
    folder.mkdir()
    one_mm = np.eye(4)
    nib.save(nib.Nifti1Image(volumes["T1c"].astype(np.float32), one_mm), str(folder / "t1c.nii.gz"))
    change = SpacingChange(SHAPE, (1.0, 1.0, 1.0), (0.5, 0.5, 3.0))     # 0.75 mm3: finer
    flair = change.to_model(volumes["FLAIR"].astype(np.float32), 1)
    nib.save(nib.Nifti1Image(flair, change.affine(one_mm)), str(folder / "flair.nii.gz"))
    paths = {"T1c": folder / "t1c.nii.gz", "FLAIR": folder / "flair.nii.gz"}
    segmenter = keras_segmenter(trained, OPTIONS)
    for grid, reference, shape in ((GridOptions(), "flair", change.out_shape),
                                   (GridOptions(reference="T1c"), "t1c", SHAPE)):
        out = tmp_path / reference
        report = predict_subject(segmenter, subject_from_files(paths), out,
                                 PredictConfig(grid=grid, outputs_on_each_grid=True))
        ref = nib.load(str(paths[{"flair": "FLAIR", "t1c": "T1c"}[reference]]))
        for name in ("seg.nii.gz", "uncertainty.nii.gz", "synth_T1.nii.gz"):
            written = nib.load(str(out / name))
            assert written.shape == ref.shape == shape
            np.testing.assert_allclose(written.affine, ref.affine, atol=1e-6)
        assert report["grid"]["reference"].endswith(f"{reference}.nii.gz")
        other = {"flair": "T1c", "t1c": "FLAIR"}[reference]
        assert f"seg_on_{other}.nii.gz" in report["outputs"]
        on_other = nib.load(str(out / f"seg_on_{other}.nii.gz"))
        original = nib.load(str(paths[other]))
        assert on_other.shape == original.shape
        np.testing.assert_allclose(on_other.affine, original.affine, atol=1e-6)
        assert report["model"]["spacing_mm"] == [1.0, 1.0, 1.0]
        resampled = report["inference"].get("resampled", False)
        assert resampled == (reference == "flair")
        if resampled:
            assert report["inference"]["input_spacing_mm"] == pytest.approx(
                list(change.out_zooms))
