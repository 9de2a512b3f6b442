"""Post-processing of a segmentation's labels (NumPy/SciPy; off by default: the paper's
protocol segments without it).

- `et_threshold` N (RFNet's "ETpp" rule, with N = 500): when fewer than N voxels are labelled
  enhancing tumour, they are relabelled necrotic / non-enhancing core (small enhancing
  predictions are mostly false positives, and an empty prediction scores 1 on an empty truth).
- `min_component` N: 26-connected components of the whole tumour smaller than N voxels are
  removed (set to background): the spurious blobs far from the tumour.
- `largest_component`: every whole-tumour component but the largest is removed.
Labels are training classes (0 background, 1 necrotic / non-enhancing core, 2 oedema, 3
enhancing); the whole-tumour rules act before the enhancing one.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

NECROTIC, ENHANCING = 1, 3
CONNECTIVITY = ndimage.generate_binary_structure(3, 3)


def postprocess(labels: np.ndarray, et_threshold: int = 0, min_component: int = 0,
                largest_component: bool = False) -> np.ndarray:
    """The labels after the rules of the module docstring.

    Args:
        labels: training labels 0..3.
        et_threshold: ETpp: fewer enhancing voxels than this become necrotic (0: off).
        min_component: whole-tumour components smaller than this are removed (0: off).
        largest_component: keep the largest whole-tumour component only.

    Returns:
        A new array.
    """
    labels = np.array(labels, copy=True)
    if min_component or largest_component:
        components, count = ndimage.label(labels > 0, CONNECTIVITY)
        if count:
            sizes = np.bincount(components.ravel(), minlength=count + 1)
            sizes[0] = 0
            keep = sizes >= min_component
            if largest_component:
                keep &= np.arange(count + 1) == int(np.argmax(sizes))
            keep[0] = True
            labels[~keep[components]] = 0
    if et_threshold:
        enhancing = labels == ENHANCING
        if 0 < int(enhancing.sum()) < et_threshold:
            labels[enhancing] = NECROTIC
    return labels
