"""A subject's figure (matplotlib): what a clinician needs to read a segmentation unaided.

`subject_columns(...)` chooses the columns, in one order everywhere (predict's figure.png,
evaluate's figures, TensorBoard's validation images): each input sequence, each synthesised
sequence (titled as such, its background masked), the truth when known, the prediction, the
uncertainty when given. `subject_figure(columns, centre, title)` draws a row per plane (axial,
coronal, sagittal) through the tumour's centre with the slice index and the orientation marks
(L/R, A/P, S/I) on each row, column titles, a legend naming the BraTS regions and their colours
and a colour bar for the uncertainty; each panel is at least `PANEL_PX` pixels wide.
"""
from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")                 # files only; never a window (import before pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from hved_tf.figures.slices import (CLASS_COLOURS, CLASS_LEGEND, PLANES,  # noqa: E402
                                    foreground, normalise, overlay_rgba, plane_slice,
                                    tumour_centre)
from hved_tf.modalities import MODALITIES  # noqa: E402

PANEL_PX = 180
DPI = 100
MAX_ENTROPY = math.log(4.0)           # nats: four classes equally likely


@dataclasses.dataclass
class Column:
    title: str
    volume: np.ndarray                # [X, Y, Z]: gray levels, labels or uncertainty
    kind: str                         # "image", "labels" or "uncertainty"
    base: np.ndarray | None = None    # gray levels under labels


def subject_columns(image, mask, labels, recon=None, truth_labels=None, uncertainty=None):
    """The columns of a subject's figure (see the module docstring).

    image [X, Y, Z, 4] (its present channels used), mask [4], labels [X, Y, Z] training
    classes, recon [X, Y, Z, 4] or None, truth_labels or None, uncertainty [X, Y, Z] or None.
    """
    mask = np.asarray(mask) > 0
    brain = foreground(image, mask)
    columns = [Column(MODALITIES[i], normalise(image[..., i], brain), "image")
               for i in np.flatnonzero(mask)]
    if recon is not None:
        for i in np.flatnonzero(~mask):
            gray = normalise(recon[..., i], brain)
            columns.append(Column(f"{MODALITIES[i]}\n(synthesised)",
                                  np.where(brain, gray, np.nan), "image"))
    base = columns[int(mask.sum()) - 1].volume if mask.any() else None
    if truth_labels is not None:
        columns.append(Column("truth", np.asarray(truth_labels), "labels", base))
    columns.append(Column("prediction", np.asarray(labels), "labels", base))
    if uncertainty is not None:
        columns.append(Column("uncertainty", np.where(brain, uncertainty, np.nan),
                              "uncertainty"))
    return columns


GRAY = plt.get_cmap("gray").with_extremes(bad="black")      # NaN: the masked background
MAGMA = plt.get_cmap("magma").with_extremes(bad="black")


def _draw(ax, column, plane, index):
    gray = GRAY
    if column.kind == "labels":
        under = column.base if column.base is not None else np.zeros(column.volume.shape)
        ax.imshow(plane_slice(under, plane, index), cmap=gray, vmin=0, vmax=1)
        return ax.imshow(overlay_rgba(plane_slice(column.volume, plane, index)))
    if column.kind == "uncertainty":
        return ax.imshow(plane_slice(column.volume, plane, index), cmap=MAGMA, vmin=0,
                         vmax=MAX_ENTROPY)
    return ax.imshow(plane_slice(column.volume, plane, index), cmap=gray, vmin=0, vmax=1)


def _marks(ax, marks):
    left, right, top, bottom = marks
    style = {"color": "yellow", "fontsize": 8, "fontweight": "bold",
             "transform": ax.transAxes}
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.98, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)


def subject_figure(columns, centre=None, title=""):
    """A matplotlib Figure of the columns (rows: axial, coronal, sagittal); `centre` a RAS
    voxel (default: the tumour's centre in the truth, else in the prediction)."""
    if centre is None:
        labels = [c for c in columns if c.kind == "labels"]
        centre = tumour_centre(labels[0].volume) if labels else None
    shape = columns[0].volume.shape
    centre = centre or tuple(s // 2 for s in shape)
    n = len(columns)
    width = n * PANEL_PX / DPI + 1.2
    fig, axes = plt.subplots(len(PLANES), n, figsize=(width, 3 * PANEL_PX / DPI + 1.3),
                             dpi=DPI, squeeze=False, layout="constrained")
    shown = None
    for r, (plane, (axis, marks)) in enumerate(PLANES.items()):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            image = _draw(ax, column, plane, centre[axis])
            if column.kind == "uncertainty":
                shown = image
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column.title, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{plane}\n{'xyz'[axis]} = {centre[axis]}", fontsize=9)
                _marks(ax, marks)
    if shown is not None:
        fig.colorbar(shown, ax=axes[:, -1], shrink=0.7, label="entropy (nats)")
    fig.legend(handles=[Patch(color=CLASS_COLOURS[k], label=CLASS_LEGEND[k])
                        for k in sorted(CLASS_COLOURS)],
               loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
