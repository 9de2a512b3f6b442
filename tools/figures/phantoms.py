"""The documentation's picture of the anatomical phantoms (hved_tf.data.anatomy).

    python -m tools.figures.phantoms [--out docs/figures/anatomical_phantoms.png] [--voxel_mm 2]

Three subjects, one per scanner profile ("default", then two the robustness benchmark keeps
unseen): an axial slice through the tumour of each sequence and of the labels.
"""
from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from hved_tf.data.anatomy import PROFILES, make_anatomical_phantom  # noqa: E402
from hved_tf.modalities import MODALITIES  # noqa: E402

LABELS = (("necrotic / non-enhancing core", "#d62728"), ("oedema", "#2ca02c"),
          ("enhancing", "#ffdd00"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/anatomical_phantoms.png")
    parser.add_argument("--voxel_mm", type=float, default=2.0)
    args = parser.parse_args(argv)
    rows = [("default", 1), ("bright_biased", 3), ("noisy_thick", 4)]
    fig, axes = plt.subplots(len(rows), 5, figsize=(12.5, 2.9 * len(rows)))
    colours = ListedColormap(["none"] + [c for _, c in LABELS])
    for r, (profile, seed) in enumerate(rows):
        images, label = make_anatomical_phantom([0, seed], args.voxel_mm, PROFILES[profile])
        z = int(np.argmax((label > 0).sum(axis=(0, 1))))
        for k, modality in enumerate(MODALITIES):
            ax = axes[r, k]
            ax.imshow(images[modality][:, :, z].T, origin="lower", cmap="gray")
            ax.set_title(f"{modality}" + (f"\n{profile} scanner" if k == 0 else ""),
                         fontsize=10)
        ax = axes[r, 4]
        ax.imshow(images["T1"][:, :, z].T, origin="lower", cmap="gray")
        ax.imshow(np.ma.masked_equal(label[:, :, z].T, 0), origin="lower", cmap=colours,
                  vmin=0, vmax=3, interpolation="nearest", alpha=0.8)
        ax.set_title(f"labels (axial slice {z})", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(handles=[Patch(color=c, label=n) for n, c in LABELS], loc="lower center",
               ncol=3, frameon=False)
    fig.suptitle(f"Anatomical phantoms: the MNI152 2009 template with a grown tumour, "
                 f"{args.voxel_mm:g} mm voxels (L on the left of each image: RAS)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
