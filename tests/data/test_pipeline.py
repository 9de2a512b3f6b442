"""Samplers, augmentation invariants, the tf.data stream."""
import numpy as np
import pytest
import tensorflow as tf

from hved_tf.data import augment, pipeline
from hved_tf.data.cache import PreparedSubject, _class_indices
from hved_tf.preprocessing.crop import CropBox


def _subject(shape=(30, 26, 22), seed=0, available=(1, 1, 0, 1)):
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    label[5:9, 5:9, 5:9] = 1          # a small class
    label[10:20, 8:18, 6:16] = 2
    label[12:14, 12:14, 9:11] = 3     # a tiny class
    image = rng.normal(size=(*shape, 4)).astype(np.float32)
    image[..., 0] = label
    return PreparedSubject("s", image, label, np.asarray(available, np.float32),
                           CropBox((0, 0, 0), shape, shape), _class_indices(label, rng))


def test_uniform_corners_cover_every_position():
    rng = np.random.default_rng(0)
    corners = pipeline.uniform_corners((10, 8, 6), (7, 8, 9), 20000, rng)
    assert corners[:, 0].min() == 0 and corners[:, 0].max() == 3
    np.testing.assert_allclose(np.bincount(corners[:, 0]) / 20000, 0.25, atol=0.015)
    assert set(corners[:, 1]) == {0} and set(corners[:, 2]) == {0}   # window >= volume


def test_balanced_sampler_centres_each_class_equally():
    subject = _subject()
    rng = np.random.default_rng(1)
    centres = pipeline.balanced_centres(subject.class_indices, subject.label.shape, 40000, rng)
    classes = subject.label[tuple(centres.T)]
    np.testing.assert_allclose(np.bincount(classes, minlength=4) / 40000, 0.25, atol=0.01)
    corners = pipeline.corners_from_centres(centres, subject.label.shape, (16, 16, 16))
    assert corners.min() >= 0
    assert np.all(corners <= np.asarray(subject.label.shape) - 16)
    inside = np.all((centres >= corners) & (centres < corners + 16), axis=1)
    assert inside.all()       # the chosen voxel is always in its window


def test_foreground_sampler_centres_its_share_on_the_tumour():
    # One tumour voxel in a 12x10x9 subject padded by 2: a window is centred on it with the
    # sampler's probability p, and a uniform window lands on that same corner with
    # probability 1 / (number of corners): expected share p + (1 - p) / positions.
    shape, window, offset, p, n = (12, 10, 9), (6, 6, 6), 2, 0.3, 20000
    label = np.zeros(shape, np.uint8)
    label[7, 3, 4] = 2
    indices = _class_indices(label, np.random.default_rng(0))
    padded = tuple(s + 2 * offset for s in shape)
    corners = pipeline.foreground_corners(indices, padded, window, n, p,
                                          np.random.default_rng(1), offset)
    centred = np.array([7, 3, 4]) + offset - 3                    # the voxel in the middle
    positions = np.prod([s - w + 1 for s, w in zip(padded, window)])
    share = np.all(corners == centred, axis=1).mean()
    expected = p + (1 - p) / positions
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    assert corners.min() >= 0 and np.all(corners <= np.asarray(padded) - window)
    # p = 0, or a subject without tumour: exactly the uniform sampler's windows.
    uniform = pipeline.uniform_corners(padded, window, 50, np.random.default_rng(2))
    healthy = _class_indices(0 * label, np.random.default_rng(0))
    for fraction, idx in ((0.0, indices), (0.9, healthy)):
        got = pipeline.foreground_corners(idx, padded, window, 50, fraction,
                                          np.random.default_rng(2), offset)
        np.testing.assert_array_equal(got, uniform)
    with pytest.raises(ValueError, match="foreground_fraction"):
        pipeline.PipelineConfig(window=(16, 16, 16), sampler="foreground",
                                foreground_fraction=1.5).validate()


def test_extract_window_pads_small_volumes():
    vol = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) + 1
    out = pipeline.extract_window(vol, (0, 0, 0), (4, 3, 5), pad_value=np.array([-1.0, -2.0]))
    assert out.shape == (4, 3, 5, 2)
    np.testing.assert_array_equal(out[:2, :, :4], vol)
    assert np.all(out[2:, ..., 0] == -1) and np.all(out[:, :, 4, 1] == -2)


def test_flip_twice_is_identity_and_moves_image_with_label():
    rng = np.random.default_rng(2)
    label = rng.integers(0, 4, (6, 7, 8, 1)).astype(np.int32)
    image = np.concatenate([label.astype(np.float32), rng.normal(size=(6, 7, 8, 3))], -1)
    seed = tf.constant([3, 4], tf.int64)
    im1, lb1 = augment.random_flip(image, label, (0, 1, 2), seed)
    im2, lb2 = augment.random_flip(im1, lb1, (0, 1, 2), seed)
    np.testing.assert_array_equal(im2, image)
    np.testing.assert_array_equal(lb2, label)
    np.testing.assert_array_equal(im1[..., 0], tf.cast(lb1[..., 0], tf.float32))
    flips = {tuple(np.asarray(augment.random_flip(image, label, (0,), tf.constant([s, 0]))[1])
                   .ravel()[:5]) for s in range(20)}
    assert len(flips) == 2       # both outcomes occur


def test_affine_keeps_label_values_and_alignment():
    label = np.zeros((24, 24, 24, 1), np.int32)
    label[6:18, 8:16, 4:20] = 2
    label[10:14, 10:14, 10:14] = 3
    image = (label > 0).astype(np.float32)
    for s in range(5):
        im, lb = augment.random_affine(image, label, (20, 20, 20), tf.constant([s, 1]),
                                       rotation_degrees=10, scaling=0.1)
        assert set(np.unique(lb.numpy())) <= {0, 2, 3}
        # Image (trilinear) and label (nearest) moved together: they agree but for ties at
        # the 0.5 level of the blurred edge.
        agree = np.mean(np.rint(im.numpy()) == (lb.numpy() > 0))
        assert agree > 0.98, agree
    # No rotation, no scaling: the central crop, exactly.
    im, lb = augment.random_affine(image, label, (20, 20, 20), tf.constant([0, 0]))
    np.testing.assert_array_equal(lb, label[2:22, 2:22, 2:22])
    np.testing.assert_allclose(im, image[2:22, 2:22, 2:22], atol=1e-6)
    assert not np.array_equal(
        augment.random_affine(image, label, (20, 20, 20), tf.constant([0, 1]),
                              rotation_degrees=10)[1], label[2:22, 2:22, 2:22])


def test_affine_scaling_by_hand():
    # A zoom by exactly 2 (scaling 1 would be out of range; call the matrix directly).
    vol = tf.reshape(tf.range(9.0 ** 3), (9, 9, 9, 1))
    matrix = tf.eye(3) / 2.0
    out = augment.resample(vol, matrix, (9, 9, 9), order=1).numpy()
    # The centre stays; one voxel out from the centre samples half a voxel out.
    assert out[4, 4, 4, 0] == vol[4, 4, 4, 0]
    assert out[5, 4, 4, 0] == pytest.approx(0.5 * (vol[4, 4, 4, 0] + vol[5, 4, 4, 0]))


def _take(ds, n):
    return [(x["image"].numpy(), x["available"].numpy(), y.numpy())
            for x, y in ds.take(n)]


@pytest.mark.parametrize("augmentation", [
    {"spatial_augmentation": "window", "volume_padding": 0, "rotation_degrees": 10},
    {"spatial_augmentation": "release", "volume_padding": 4},
    {"spatial_augmentation": "window", "volume_padding": 2, "sampler": "foreground"}],
    ids=["window", "release", "foreground"])
def test_stream_elements_and_reproducibility(augmentation):
    subjects = [_subject(seed=0), _subject(shape=(20, 18, 16), seed=1, available=(1, 1, 1, 1))]
    config = pipeline.PipelineConfig(**{"window": (16, 16, 16), "windows_per_volume": 3,
                                        "sampler": "balanced", "batch_size": 2, "scaling": 0.1,
                                        "seed": 7, **augmentation})
    a = _take(pipeline.make_training_dataset(subjects, config), 4)
    b = _take(pipeline.make_training_dataset(subjects, config), 4)
    for (ia, aa, la), (ib, ab, lb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
    image, available, label = a[0]
    assert image.shape == (2, 16, 16, 16, 4) and image.dtype == np.float32
    assert label.shape == (2, 16, 16, 16, 1) and label.dtype == np.int32
    assert {tuple(r) for batch in a for r in batch[1]} == {(1, 1, 0, 1), (1, 1, 1, 1)}
    other = _take(pipeline.make_training_dataset(
        subjects, pipeline.PipelineConfig(**{**config.__dict__, "seed": 8})), 1)
    assert not np.array_equal(other[0][0], a[0][0])


def test_intensity_augmentation_changes_images_only_on_its_own_stream():
    from hved_tf.config import IntensityConfig
    subjects = [_subject(seed=0), _subject(shape=(20, 18, 16), seed=1, available=(1, 1, 1, 1))]
    plain = pipeline.PipelineConfig(window=(16, 16, 16), windows_per_volume=3, batch_size=1,
                                    seed=7, volume_padding=2)
    on = pipeline.PipelineConfig(**{**plain.__dict__, "intensity": IntensityConfig(
        gamma=(1.0, 0.3), noise=(1.0, 0.2))})
    a = _take(pipeline.make_training_dataset(subjects, plain), 3)
    b = _take(pipeline.make_training_dataset(subjects, on), 3)
    for (ia, aa, la), (ib, ab, lb) in zip(a, b):
        np.testing.assert_array_equal(la, lb)              # the same windows, the same labels
        np.testing.assert_array_equal(aa, ab)
        assert not np.allclose(ia, ib)
        # The background (each channel's minimum in the window) keeps its value.
        background = ia[0] == ia[0].reshape(-1, 4).min(0)
        np.testing.assert_array_equal(ib[0][background], ia[0][background])


def test_stream_rejects_unlabelled_subjects_and_bad_config():
    subject = _subject()
    unlabelled = PreparedSubject("u", subject.image, None, subject.available, subject.box, None)
    with pytest.raises(ValueError, match="has no label"):
        pipeline.make_training_dataset([unlabelled])
    with pytest.raises(ValueError, match="sampler"):
        pipeline.make_training_dataset([subject], pipeline.PipelineConfig(sampler="grid"))
    with pytest.raises(ValueError, match="No subject"):
        pipeline.make_training_dataset([])
