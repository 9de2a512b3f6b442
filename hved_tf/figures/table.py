"""Table 1 at a glance (matplotlib): `dice_heatmap(means, models, subsets)`, a heat map of the
mean Dice (%) per modality subset (rows) and region (columns), one panel per model, each cell
written out."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REGIONS = (("whole_tumour", "WT"), ("tumour_core", "TC"), ("enhancing", "ET"))


def dice_heatmap(means, models, subsets, title="Dice (%) per modality subset"):
    """means {(model, subset, region): mean Dice in [0, 1]} (missing: blank)."""
    fig, axes = plt.subplots(1, len(models), squeeze=False, dpi=100, layout="constrained",
                             figsize=(1.6 + 2.4 * len(models), 1.2 + 0.32 * len(subsets)))
    image = None
    for k, model in enumerate(models):
        ax = axes[0, k]
        grid = np.array([[100 * means.get((model, s, r), np.nan) for r, _ in REGIONS]
                         for s in subsets])
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 60 else "black")
        ax.set_xticks(range(len(REGIONS)), [short for _, short in REGIONS])
        ax.set_yticks(range(len(subsets)), subsets if k == 0 else [""] * len(subsets),
                      fontsize=7)
        ax.set_title(model, fontsize=9)
    fig.colorbar(image, ax=axes[0, :], shrink=0.8, label="Dice (%)")
    fig.suptitle(title, fontsize=10)
    return fig
