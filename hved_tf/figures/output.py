"""Figures to pixels and files: `figure_pixels(fig)` (RGB uint8 [H, W, 3], e.g. for
TensorBoard) and `save_figure(path, fig)` (a PNG written whole or not at all); both close the
figure."""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hved_tf.io.atomic import atomic_path  # noqa: E402


def figure_pixels(fig):
    try:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)


def save_figure(path, fig):
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=fig.dpi)
    finally:
        plt.close(fig)
    return pathlib.Path(path)
