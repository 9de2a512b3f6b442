"""Figures: the overlay colours where the labels are, the orientation of the slices, and the
labelled figure (titles, legend, colour bar, size) checked on the matplotlib figure itself."""
import numpy as np
from PIL import Image

from hved_tf.figures import (CLASS_COLOURS, CLASS_LEGEND, PANEL_PX, dice_heatmap, overlay,
                             plane_slice, save_figure, subject_columns, subject_figure)


def test_overlay_colours_sit_on_the_labels():
    gray = np.full((6, 6), 0.5, np.float32)
    labels = np.zeros((6, 6), np.uint8)
    labels[0, 0], labels[1, 1], labels[2, 2] = 1, 2, 3
    rgb = overlay(gray, labels)
    for value, (y, x) in ((1, (0, 0)), (2, (1, 1)), (3, (2, 2))):
        channel = int(np.argmax(CLASS_COLOURS[value]))
        assert rgb[y, x, channel] > 0.6 and np.delete(rgb[y, x], channel).max() < 0.45
    np.testing.assert_allclose(rgb[5, 5], 0.5)


def test_slices_are_in_neurological_orientation():
    """RAS volume: the patient's right (high x) on the right of the picture, anterior (high y)
    at the top of an axial slice, superior (high z) at the top of coronal and sagittal ones."""
    volume = np.zeros((10, 12, 8))
    volume[9, 11, 7] = 1.0                        # right, anterior, superior corner
    axial = plane_slice(volume, "axial", 7)
    coronal = plane_slice(volume, "coronal", 11)
    sagittal = plane_slice(volume, "sagittal", 9)
    assert axial.shape == (12, 10) and axial[0, -1] == 1.0          # top right
    assert coronal.shape == (8, 10) and coronal[0, -1] == 1.0       # top (S), right (R)
    assert sagittal.shape == (8, 12) and sagittal[0, -1] == 1.0     # top (S), right (A)


def _case():
    shape = (20, 24, 16)
    rng = np.random.default_rng(0)
    image = np.zeros(shape + (4,), np.float32)
    image[3:17, 3:21, 2:14] = rng.random((14, 18, 12, 4)) + 1.0     # a brain on zeros
    image[..., 0] = 0                                               # T1 missing
    labels = np.zeros(shape, np.uint8)
    labels[8:12, 10:14, 6:10] = 2
    labels[9:11, 11:13, 7:9] = 3
    recon = rng.random(shape + (4,)).astype(np.float32)
    return image, labels, recon, np.array([0, 1, 1, 1], np.float32)


def test_subject_figure_has_titles_legend_colour_bar_and_readable_panels(tmp_path):
    image, labels, recon, mask = _case()
    columns = subject_columns(image, mask, labels, recon, truth_labels=labels,
                              uncertainty=np.full(labels.shape, 0.3))
    assert [c.title for c in columns] == ["T1c", "T2", "FLAIR", "T1\n(synthesised)", "truth",
                                          "prediction", "uncertainty"]
    synthesised = columns[3].volume
    assert np.isnan(synthesised[0, 0, 0]) and np.isfinite(synthesised[10, 12, 8])   # masked
    fig = subject_figure(columns, title="S1 · T1c+T2+FLAIR present · u_hved · step 7")
    axes = fig.axes
    panels = [ax for ax in axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 * len(columns)
    assert [ax.get_title() for ax in panels[:len(columns)]] == [c.title for c in columns]
    rows = [panels[r * len(columns)].get_ylabel() for r in range(3)]
    assert [r.split("\n")[0] for r in rows] == ["axial", "coronal", "sagittal"]
    marks = {t.get_text() for t in panels[0].texts}
    assert marks == {"L", "R", "A", "P"}
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [CLASS_LEGEND[k] for k in (1, 2, 3)]
    assert any(ax.get_label() == "<colorbar>" and "entropy" in ax.get_ylabel() for ax in axes)
    assert fig._suptitle.get_text().startswith("S1 · T1c+T2+FLAIR")
    width, height = fig.get_size_inches() * fig.dpi
    assert width / len(columns) >= PANEL_PX >= 160
    path = save_figure(tmp_path / "f.png", fig)
    with Image.open(path) as png:
        assert png.size == (round(width), round(height))


def test_prediction_colours_are_where_the_labels_are(tmp_path):
    """The rendered prediction panel is green on oedema and blue on enhancing voxels."""
    from hved_tf.figures import figure_pixels

    image, labels, recon, mask = _case()
    big = np.kron(labels, np.ones((4, 4, 4), np.uint8))            # 80 x 96 x 64
    big_image = np.kron(image, np.ones((4, 4, 4, 1), np.float32))
    columns = subject_columns(big_image, mask, big)
    fig = subject_figure(columns)
    ax = fig.axes[len(columns) - 1]                                  # axial, prediction
    fig.canvas.draw()
    x0, y0, x1, y1 = ax.get_window_extent().extents
    pixels = figure_pixels(fig).astype(int)
    h = pixels.shape[0]
    tile = pixels[int(h - y1) + 1:int(h - y0) - 1, int(x0) + 1:int(x1) - 1]
    truth = plane_slice(big, "axial", 8 * 4 + 1)
    ys = (np.arange(tile.shape[0]) * truth.shape[0] / tile.shape[0]).astype(int)
    xs = (np.arange(tile.shape[1]) * truth.shape[1] / tile.shape[1]).astype(int)
    resampled = truth[np.ix_(ys, xs)]
    green, blue = tile[resampled == 2], tile[resampled == 3]
    assert len(green) and len(blue)
    assert np.median(green[:, 1] - green[:, [0, 2]].max(1)) > 40
    assert np.median(blue[:, 2] - blue[:, :2].max(1)) > 40


def test_heatmap_writes_each_mean(tmp_path):
    means = {("m", "T1c", "whole_tumour"): 0.5, ("m", "T1c", "tumour_core"): 0.25,
             ("m", "T1c", "enhancing"): 0.125, ("m", "FLAIR", "whole_tumour"): 0.75}
    fig = dice_heatmap(means, ["m"], ["T1c", "FLAIR"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(["50.0", "25.0", "12.5", "75.0"])
    assert fig.axes[0].get_title() == "m"
    save_figure(tmp_path / "t.png", fig)
