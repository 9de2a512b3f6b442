"""The release mode's volume augmentation against NiftyNet 0.5.0's own layers, run with matched
draws (tests/fixtures/niftynet_augment.npz, made by tools/dev/niftynet_augment_fixtures.py with the
NumPy and SciPy versions it records): padding with line minima, flip then zoom, antialiasing
when every zoom is below 1, and the release's label filtering under its flag."""
import numpy as np
import pytest

from conftest import REPO
from hved_tf.config import PipelineConfig
from hved_tf.data.visit_augment import (VisitTransform, antialias_sigma, pad_line_minimum,
                                        transform_volume)

FIXTURE = np.load(REPO / "tests" / "fixtures" / "niftynet_augment.npz")
CASES = sorted({key.split("/")[0] for key in FIXTURE.files if "/" in key})
IMAGE = FIXTURE["image"][:, :, :, 0, :]                 # NiftyNet's [X, Y, Z, 1, M]
LABEL = FIXTURE["label"][..., 0, 0].astype(np.uint8)
PADDING = int(FIXTURE["padding"])


def _port(case, label_filtering):
    transform = VisitTransform(tuple(FIXTURE[f"{case}/zooms"]),
                               tuple(bool(f) for f in FIXTURE[f"{case}/flips"]))
    return transform_volume(pad_line_minimum(IMAGE, PADDING), pad_line_minimum(LABEL, PADDING),
                            transform, label_filtering)


def test_padding_takes_each_lines_minimum_as_niftynet():
    np.testing.assert_array_equal(pad_line_minimum(IMAGE, PADDING),
                                  FIXTURE["padded_image"][:, :, :, 0, :])
    np.testing.assert_array_equal(pad_line_minimum(LABEL, PADDING),
                                  FIXTURE["padded_label"][..., 0, 0])
    # The fixture has lines without background: their padding is not the global minimum.
    assert np.any(FIXTURE["padded_label"][..., 0, 0][..., :PADDING] > 0)
    assert np.any(FIXTURE["padded_image"][:PADDING, ..., 0, 0] > IMAGE[..., 0].min())


@pytest.mark.parametrize("case", CASES)
def test_images_equal_niftynets_with_matched_draws(case):
    image, _ = _port(case, label_filtering=False)
    expected = FIXTURE[f"{case}/image"][:, :, :, 0, :]
    assert image.shape == expected.shape
    # Equal to rounding: antialiasing alone moves these images by about 1e-5.
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_labels_with_the_release_filtering_equal_niftynets_truncated(case):
    _, label = _port(case, label_filtering=True)
    # The loss casts NiftyNet's float labels to integers: truncation.
    expected = np.trunc(FIXTURE[f"{case}/label"][..., 0, 0]).astype(np.uint8)
    np.testing.assert_array_equal(label, expected)


@pytest.mark.parametrize("case", CASES)
def test_labels_without_the_flag_differ_only_where_niftynet_smoothed_them(case):
    _, label = _port(case, label_filtering=False)
    expected = np.trunc(FIXTURE[f"{case}/label"][..., 0, 0]).astype(np.uint8)
    if antialias_sigma(FIXTURE[f"{case}/zooms"]) is None:
        np.testing.assert_array_equal(label, expected)
    else:                                   # the quirk: some boundary voxels drop a class
        assert np.any(label != expected)
        assert np.all(label >= expected)


def test_antialiasing_sigma_closed_form():
    # k = 1/z: sigma = sqrt(k^2 - 1) / (2 sqrt(2 ln 2)); z = 0.8 -> k = 1.25, sqrt(0.5625)=0.75
    assert antialias_sigma((0.8, 0.8, 0.8)) == pytest.approx([0.75 / 2.3548200450309493] * 3)
    assert antialias_sigma((0.8, 1.0, 0.9)) is None
    assert antialias_sigma((1.1, 1.05, 1.02)) is None


def test_flip_comes_before_the_zoom():
    # scipy's zoom can leave its last output plane 0; flipping first keeps it at the end.
    volume = np.arange(7 * 5 * 5, dtype=np.float32).reshape(7, 5, 5, 1)
    transform = VisitTransform((0.9, 1.0, 1.0), (True, False, False))
    image, _ = transform_volume(volume, np.zeros((7, 5, 5), np.uint8), transform)
    from scipy import ndimage
    from hved_tf.data.visit_augment import antialias_sigma as sigma_of
    assert sigma_of(transform.zooms) is None
    expected = ndimage.zoom(volume[::-1, ..., 0], transform.zooms, order=3)
    np.testing.assert_allclose(image[..., 0], expected, atol=1e-6)


def test_label_filtering_needs_the_release_mode():
    PipelineConfig(release_label_filtering=True).validate()      # release is the default
    with pytest.raises(ValueError, match="--release_label_filtering.*release"):
        PipelineConfig(release_label_filtering=True, spatial_augmentation="window").validate()
