"""Figures: size of the panel and the overlay colours where the labels are."""
import numpy as np

from hved_tf.figures import OVERLAY_COLOURS, overlay, save_png, subject_figure


def test_overlay_colours_sit_on_the_labels():
    gray = np.full((6, 6), 0.5, np.float32)
    labels = np.zeros((6, 6), np.uint8)
    labels[0, 0], labels[1, 1], labels[2, 2] = 1, 2, 3
    rgb = overlay(gray, labels)
    for value, (y, x) in ((1, (0, 0)), (2, (1, 1)), (3, (2, 2))):
        channel = int(np.argmax(OVERLAY_COLOURS[value]))
        assert rgb[y, x, channel] > 0.7 and np.delete(rgb[y, x], channel).max() < 0.3
    np.testing.assert_allclose(rgb[5, 5], 0.5)


def test_subject_figure_size_and_colours(tmp_path):
    from PIL import Image

    shape = (20, 24, 16)
    rng = np.random.default_rng(0)
    image = rng.random(shape + (4,)).astype(np.float32)
    image[..., 0] = 0                                   # T1 missing
    labels = np.zeros(shape, np.uint8)
    labels[8:12, 10:14, 6:10] = 2                       # oedema
    labels[9:11, 11:13, 7:9] = 3                        # enhancing core
    recon = rng.random(shape + (4,)).astype(np.float32)
    mask = np.array([0, 1, 1, 1], np.float32)
    rgb, names = subject_figure(image, mask, labels, recon, truth_labels=labels,
                                truth_image=image, gap=2)
    # Columns: T1c, T2, FLAIR inputs, T1 synthesised (no real T1), prediction, truth.
    assert names == ["T1c", "T2", "FLAIR", "T1 synthesised", "prediction", "truth"]
    rows = [24 + 2, 16 + 2, 16 + 2]                     # axial (Y), coronal (Z), sagittal (Z)
    assert rgb.shape == (sum(rows), 6 * (max(20, 24) + 2), 3)
    # The axial row, prediction column: through the tumour centre z = 8 (label 3 present there).
    col = 4 * (20 + 2)
    tile = rgb[:24, col:col + 20].astype(int)
    truth_tile = np.swapaxes(labels[:, :, 8], 0, 1)[::-1]
    green = tile[truth_tile == 2]
    blue = tile[truth_tile == 3]
    assert (green[:, 1] > green[:, 0] + 40).all() and (green[:, 1] > green[:, 2] + 40).all()
    assert (blue[:, 2] > blue[:, 0] + 40).all() and (blue[:, 2] > blue[:, 1] + 40).all()
    background = tile[truth_tile == 0]
    assert (np.ptp(background, axis=1) == 0).all()      # gray where there is no label
    path = save_png(tmp_path / "f.png", rgb)
    with Image.open(path) as img:
        assert img.size == (rgb.shape[1], rgb.shape[0])
