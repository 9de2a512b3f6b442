"""Nyúl standardisation and the intensity chain against NiftyNet 0.5.0 and hand cases."""

import numpy as np
import pytest

from hved_tf.modalities import MODALITIES
from hved_tf.preprocessing import histogram, normalise_intensities
from conftest import REPO, tool_module

GOLDEN = REPO / "tests" / "fixtures" / "niftynet_golden.npz"


def _golden_tool():
    return tool_module("tools/dev/niftynet_golden.py")


def test_chain_equals_niftynet_golden_values():
    """Golden values were produced by NiftyNet 0.5.0 itself; regenerate them with
    `python -m tools.dev.niftynet_golden --niftynet_src DIR` (the tool's docstring says how to get
    NiftyNet's source)."""
    golden = np.load(GOLDEN)
    volumes = _golden_tool().golden_volumes()
    ours = histogram.train_landmarks([volumes[0], volumes[2]])
    for i, name in enumerate(MODALITIES):
        np.testing.assert_allclose(ours[name], golden["landmarks"][i], rtol=1e-5, atol=1e-4)
    landmarks = {name: golden["landmarks"][i] for i, name in enumerate(MODALITIES)}
    for k, volume in enumerate(volumes):
        out = normalise_intensities(volume, landmarks)
        expected = golden[f"output_{k}"]
        present = np.any(volume != 0, axis=(0, 1, 2))
        assert out.shape == volume.shape and out.dtype == np.float32
        np.testing.assert_allclose(out[..., present], expected[..., present], rtol=1e-4, atol=1e-4)
        # A missing modality stays zeros (NiftyNet skipped it in the histogram step).
        np.testing.assert_array_equal(out[..., ~present], 0.0)


def test_release_hist_file_reads(reference):
    landmarks = histogram.read_niftynet_landmarks(reference / "niftynet_hist_u_hved.txt")
    assert set(landmarks) == set(MODALITIES)
    for values in landmarks.values():
        assert values.shape == (13,) and values[0] == 0.0 and values[-1] == 100.0
    assert landmarks["FLAIR"][1] == pytest.approx(15.476687)


def test_hist_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    landmarks = {m: np.sort(rng.uniform(0, 100, 13)) for m in MODALITIES}
    path = tmp_path / "sub" / "hist.txt"
    histogram.write_niftynet_landmarks(path, landmarks)
    assert path.read_text().splitlines()[3].startswith("Flair ")
    back = histogram.read_niftynet_landmarks(path)
    for m in MODALITIES:
        np.testing.assert_array_equal(back[m], landmarks[m])
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary left behind


@pytest.mark.parametrize("content,match", [
    ("T1 " + " ".join(map(str, range(13))) + "\n", "no landmarks for T1c, T2, FLAIR"),
    ("\n".join(f"{m} " + " ".join(map(str, range(13))) for m in ("T1", "T1c", "T2"))
     + "\nFlair " + " ".join(map(str, [0] * 13)), "not increasing"),
    ("\n".join(f"{m} " + " ".join(map(str, range(13))) for m in ("T1", "T1c", "T2"))
     + "\nFlair " + " ".join(map(str, [0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11, 12])),
     "not increasing"),
    ("T1 1 2 3\n", "has 3 landmarks"),
    ("PD " + " ".join(map(str, range(13))), "unknown modality"),
])
def test_bad_hist_files(tmp_path, content, match):
    path = tmp_path / "hist.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        histogram.read_niftynet_landmarks(path)
    assert str(path) in str(err.value)


def test_missing_hist_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        histogram.read_niftynet_landmarks(tmp_path / "nope.txt")


def test_piecewise_linear_map_by_hand():
    # Image percentiles equal to the landmarks: the map is the identity, also past the ends.
    volume = np.linspace(0, 100, 10001)
    mask = np.ones_like(volume, bool)
    perc = histogram.percentiles(volume, mask, histogram.standardise_cutoff((0.001, 0.999)))
    out = histogram.apply_landmarks(volume, mask, perc, cutoff=(0.001, 0.999))
    np.testing.assert_allclose(out, volume, atol=1e-9)
    # Twice the landmarks: a pure scaling by 2 everywhere.
    out = histogram.apply_landmarks(volume, mask, 2 * perc, cutoff=(0.001, 0.999))
    np.testing.assert_allclose(out, 2 * volume, atol=1e-9)
    assert histogram.standardise_cutoff((0.001, 0.999)) == (0.001, 0.999)
    assert histogram.standardise_cutoff((0.2, 0.5)) == (0.09, 0.91)


def test_normalise_rejects_bad_input():
    landmarks = {m: np.linspace(0, 100, 13) for m in MODALITIES}
    with pytest.raises(ValueError, match="\\[X, Y, Z, 4\\]"):
        normalise_intensities(np.ones((8, 8, 8)), landmarks)
    with pytest.raises(ValueError, match="All four modalities are empty"):
        normalise_intensities(np.zeros((8, 8, 8, 4)), landmarks)
    with pytest.raises(ValueError, match="No histogram landmarks for T2"):
        image = np.zeros((8, 8, 8, 4)); image[2:6, 2:6, 2:6, 2] = 1
        normalise_intensities(image, {"T1": landmarks["T1"]})
