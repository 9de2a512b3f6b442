"""Inputs at another voxel size than the model's (hved_tf.inference.spacing): the model sees its
own voxel size, the outputs come back on the input's grid, and volumes survive the round trip.
The model is a stand-in whose segmentation is known exactly (a threshold of the first
sequence), so that what is measured is the resampling alone."""

import numpy as np
import pytest

from hved_tf.inference.segmenter import finish, whole_box
from hved_tf.inference.spacing import segment_at_model_spacing

RADIUS_MM = 15.0


class ThresholdModel:
    """Tumour (class 2) where the first sequence exceeds 60 (halfway between the ball and
    its surroundings), as soft probabilities."""
    identity = {"source": "threshold"}

    def __init__(self, spacing):
        self.spacing = spacing
        self.seen = []

    def segment_raw(self, image, mask, progress=None, flipped=(False, False, False)):
        self.seen.append(image.shape)
        p = 1.0 / (1.0 + np.exp(-(image[..., 0] - 60.0) / 5.0))
        probs = np.zeros(image.shape[:3] + (4,), np.float32)
        probs[..., 0], probs[..., 2] = 1 - p, p
        return finish(probs, {"image": image}, whole_box(image.shape[:3]), {"inference_s": 0.0},
                      {"et_threshold": 0})


def ball(shape, zooms, sub=5):
    """A ball of RADIUS_MM at the centre of a grid as a scanner would image it: each voxel
    averages what it covers (partial volume, from sub x sub x sub points), 100 inside, 20 in a
    head-like shell around it, 0 outside (4-channel image); and its truth: the voxels at least
    half inside."""
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    centre = (np.asarray(shape) - 1) / 2.0
    axes = [(np.arange(n) - c) * z for n, c, z in zip(shape, centre, zooms)]
    inside = np.zeros(shape, np.float32)
    head = np.zeros(shape, np.float32)
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                x, y, z = np.meshgrid(axes[0] + dx * zooms[0], axes[1] + dy * zooms[1],
                                      axes[2] + dz * zooms[2], indexing="ij", sparse=True)
                r2 = x ** 2 + y ** 2 + z ** 2
                inside += r2 <= RADIUS_MM ** 2
                head += r2 <= (RADIUS_MM + 12) ** 2
    inside, head = inside / sub ** 3, head / sub ** 3
    image = np.zeros(tuple(shape) + (4,), np.float32)
    image[..., 0] = 100.0 * inside + 20.0 * (head - inside)
    return image, inside >= 0.5


def dice(a, b):
    return 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))


# Volumes within 2% of the truth for thick-slice inputs (measured -0.9% and -0.8%); within 3%
# for a 1 mm input, whose 2 mm model places the ball's surface no finer than its own voxels
# (measured -2.3%: the same count as thresholding the 2 mm image directly).
@pytest.mark.parametrize("zooms,shape,tolerance", [((0.5, 0.5, 5.0), (128, 128, 13), 0.02),
                                                   ((1.0, 1.0, 1.0), (64, 64, 64), 0.03),
                                                   ((0.45, 0.45, 6.0), (142, 142, 11), 0.02)])
def test_outputs_come_back_on_the_input_grid_with_the_volume_kept(zooms, shape, tolerance):
    model = ThresholdModel((2.0, 2.0, 2.0))
    image, truth = ball(shape, zooms)
    seg = segment_at_model_spacing(model, image, np.array([1, 0, 0, 0], np.float32), zooms)
    expected_model_grid = tuple(int(round(n * z / 2.0)) for n, z in zip(shape, zooms))
    assert model.seen == [expected_model_grid + (4,)]
    labels = seg.full("labels")
    assert labels.shape == shape and seg.full("probabilities").shape == shape + (4,)
    assert seg.full("image").shape == shape + (4,) and seg.full("entropy").shape == shape
    predicted = labels == 2
    assert abs(int(predicted.sum()) - int(truth.sum())) / truth.sum() < tolerance
    assert dice(predicted, truth) > 0.95
    assert seg.settings["resampled"] and seg.settings["model_spacing_mm"] == [2.0, 2.0, 2.0]
    assert seg.timings["resample_s"] >= 0


def test_an_input_at_the_model_spacing_is_not_resampled():
    model = ThresholdModel((1.0, 1.0, 1.0))
    image, truth = ball((64, 64, 64), (1.0, 1.0, 1.0), sub=1)
    seg = segment_at_model_spacing(model, image, np.ones(4, np.float32), (1.004, 1.0, 0.998))
    assert model.seen == [(64, 64, 64, 4)] and "resampled" not in seg.settings
    np.testing.assert_array_equal(seg.labels == 2, image[..., 0] > 60)


def test_keep_input_spacing_segments_as_given_and_warns_naming_both(warnings_said):
    model = ThresholdModel((2.0, 2.0, 2.0))
    image, _ = ball((64, 64, 32), (1.0, 1.0, 2.0))
    segment_at_model_spacing(model, image, np.ones(4, np.float32), (1.0, 1.0, 2.0),
                             resample=False, source="Subject P")
    assert model.seen == [(64, 64, 32, 4)]
    assert "Subject P has 1x1x2 mm voxels but the model was trained at 2x2x2 mm" in \
        warnings_said.text


def test_a_model_without_a_recorded_spacing_is_taken_as_1mm_with_a_warning(warnings_said):
    model = ThresholdModel(())
    image, _ = ball((32, 32, 32), (2.0, 2.0, 2.0))
    segment_at_model_spacing(model, image, np.ones(4, np.float32), (2.0, 2.0, 2.0))
    assert model.seen == [(64, 64, 64, 4)]
    assert "threshold records no voxel size; taking it as 1x1x1 mm" in warnings_said.text
