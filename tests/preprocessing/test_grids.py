"""Sequences of one exam on different grids put on one (hved_tf.preprocessing.grids, through
hved_tf.data.cache), and files of different exams refused; a subject prepared at another voxel
size (labels by nearest neighbour)."""
import dataclasses

import nibabel as nib
import numpy as np
import pytest

from hved_tf.data.cache import load_subject_image, prepare_subject
from hved_tf.io.datasets import subject_from_files
from hved_tf.prediction.app import check_inputs_first
from hved_tf.preprocessing.histogram import DEFAULT_CUTOFF

COEFFS = np.array([0.2, -0.15, 0.1])


def grid_affine(zooms, fov_mm, shift=(0.0, 0.0, 0.0)):
    """An axis-aligned RAS grid of voxel size `zooms` covering `fov_mm`, centred on `shift`."""
    shape = tuple(int(round(f / z)) for f, z in zip(fov_mm, zooms))
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = np.asarray(shift) - np.asarray(zooms) * (np.asarray(shape) - 1) / 2.0
    return affine, shape


def world_field(affine, shape):
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (world @ COEFFS + 50.0).astype(np.float32), world


def write(path, affine, shape, data=None):
    data = world_field(affine, shape)[0] if data is None else data
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def clinical_exam(folder, t2_shift=(0.0, 0.0, 0.0)):
    """T1c at 1 mm isotropic, FLAIR at 1x1x5 mm axial, T2 at 0.8x0.8x4 mm: one exam."""
    paths = {}
    for name, zooms, fov, shift in (("T1c", (1.0, 1.0, 1.0), (40, 40, 40), (0, 0, 0)),
                                    ("FLAIR", (1.0, 1.0, 5.0), (60, 60, 80), (0, 0, 0)),
                                    ("T2", (0.8, 0.8, 4.0), (56, 56, 80), t2_shift)):
        affine, shape = grid_affine(zooms, fov, shift)
        paths[name] = write(folder / f"{name.lower()}.nii.gz", affine, shape)
    return paths


def test_sequences_are_put_on_the_finest_grid_in_world_coordinates(tmp_path):
    paths = clinical_exam(tmp_path)
    image, geometries = load_subject_image(subject_from_files(paths))
    reference = geometries[0]
    assert reference.path.endswith("t1c.nii.gz") and image.shape == (40, 40, 40, 4)
    expected, world = world_field(reference.ras_affine, reference.ras_shape)
    np.testing.assert_allclose(image[..., 1], expected, atol=1e-4)           # T1c itself
    assert not np.any(image[..., 0])                                         # T1 absent
    inner = (slice(4, -4),) * 3
    for channel in (2, 3):                                                   # T2, FLAIR
        np.testing.assert_allclose(image[..., channel][inner], expected[inner], atol=2e-3)
    image, geometries = load_subject_image(subject_from_files(paths), reference="FLAIR")
    assert geometries[0].path.endswith("flair.nii.gz") and image.shape == (60, 60, 16, 4)


def test_a_label_on_another_grid_follows_by_nearest_neighbour(tmp_path):
    paths = clinical_exam(tmp_path)
    affine, shape = grid_affine((2.0, 2.0, 2.0), (40, 40, 40))
    label = np.zeros(shape, np.uint8)
    label[5:15, 5:15, 5:15] = 2
    label[8:12, 8:12, 8:12] = 4
    label_path = write(tmp_path / "seg.nii.gz", affine, shape, label)
    subject = subject_from_files(paths)

    subject = dataclasses.replace(subject, label_path=label_path)
    landmarks = {m: np.linspace(0, 100, 13) for m in ("T1c", "T2", "FLAIR")}
    prepared = prepare_subject(subject, landmarks, DEFAULT_CUTOFF, padding=2, do_crop=False)
    assert prepared.label.shape == (40, 40, 40)
    assert set(np.unique(prepared.label)) == {0, 2, 3}           # 4 -> class 3 (enhancing)
    assert np.count_nonzero(prepared.label) == 20 ** 3           # 1000 voxels of 8 mm3


def test_a_subject_prepared_at_another_voxel_size(tmp_path):
    affine, shape = grid_affine((1.0, 1.0, 1.0), (48, 48, 48))
    field, world = world_field(affine, shape)
    inside = np.sum(world ** 2, -1) < 18 ** 2
    paths = {m: write(tmp_path / f"{m}.nii.gz", affine, shape, np.where(inside, field, 0))
             for m in ("T1", "T2")}
    label = np.where(np.sum(world ** 2, -1) < 8 ** 2, 2, 0).astype(np.uint8)
    subject = subject_from_files(paths)

    subject = dataclasses.replace(subject,
                                  label_path=write(tmp_path / "seg.nii.gz", affine, shape, label))
    landmarks = {m: np.linspace(0, 100, 13) for m in ("T1", "T2")}
    prepared = prepare_subject(subject, landmarks, DEFAULT_CUTOFF, 10, True, spacing=(2, 2, 3))
    # 48 mm over 2x2x3 mm voxels (the crop's minimum extent keeps them all), and the
    # label's ball volume kept
    assert prepared.image.shape[:3] == prepared.label.shape == (24, 24, 16)
    volume_ml = np.count_nonzero(prepared.label) * 12 / 1000
    assert abs(volume_ml - 4 / 3 * np.pi * 8 ** 3 / 1000) < 0.05 * 2.14


@pytest.mark.parametrize("shift,message", [((200.0, 0, 0), "do not overlap in world space "
                                            r"\(their centres are 200 mm apart\)"),
                                           ((0, 0, 55.0), "55 mm apart in world space")])
def test_files_of_different_exams_are_refused_from_their_headers(tmp_path, shift, message):
    paths = clinical_exam(tmp_path, t2_shift=shift)
    with pytest.raises(ValueError, match=f"t2.nii.gz.*{message}.*registration"):
        check_inputs_first(subject_from_files(paths))
    with pytest.raises(ValueError, match=message):
        load_subject_image(subject_from_files(paths))


def test_a_reference_sequence_not_given_is_refused(tmp_path):
    paths = clinical_exam(tmp_path)
    with pytest.raises(ValueError, match="--reference_sequence T1: .* not among"):
        load_subject_image(subject_from_files(paths), reference="T1")


def test_the_zero_background_stays_zero_on_the_reference_grid(tmp_path):
    """Cubic resampling rings around a skull-stripped brain; the background must stay exactly
    zero, or the non-zero crop box would grow to the whole field of view."""
    paths = {}
    for name, zooms in (("T1c", (1.0, 1.0, 1.0)), ("FLAIR", (1.0, 1.0, 5.0))):
        affine, shape = grid_affine(zooms, (60, 60, 60))
        _, world = world_field(affine, shape)
        brain = np.where(np.sum(world ** 2, -1) < 15 ** 2, 100.0, 0.0).astype(np.float32)
        paths[name] = write(tmp_path / f"{name.lower()}.nii.gz", affine, shape, brain)
    image, geometries = load_subject_image(subject_from_files(paths))
    assert geometries[0].path.endswith("t1c.nii.gz")
    _, world = world_field(geometries[0].ras_affine, geometries[0].ras_shape)
    far = np.sum(world ** 2, -1) > 22 ** 2            # beyond the ball and a 5 mm slice
    flair = image[..., 3]
    assert np.all(flair[far] == 0) and np.all(flair[np.sum(world ** 2, -1) < 8 ** 2] > 50)
