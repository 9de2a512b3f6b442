"""The release's intensity chain for one subject (docs/explanation/design.md, Training numerics), NiftyNet 0.5.0-compatible.

normalise_intensities(image [X, Y, Z, 4], landmarks) runs, in order:
1. padding by `padding` voxels on each side of every spatial axis with NumPy's 'minimum' mode
   (each padded line takes the minimum of its line, as NiftyNet's PadLayer did);
2. the foreground: the 'mean_plus' mask of every present modality, and-ed over them, computed
   once on the padded raw volume (NiftyNet's histogram layer made it and passed it on);
3. Nyúl standardisation of each present modality with its landmarks over that foreground;
4. whitening of each present modality over the same foreground: (x - mean) / max(std, 1e-5);
5. removal of the padding (NiftyNet's output side did it), so the result has the input's shape.
Missing modalities (all zeros) are skipped and stay zeros. Pure NumPy/SciPy, float32 out.
"""
from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Iterable

import numpy as np

from hved_tf.modalities import MODALITIES
from hved_tf.preprocessing.crop import CropBox, crop, crop_box
from hved_tf.preprocessing.histogram import DEFAULT_CUTOFF, apply_landmarks, mean_plus_mask

# The dtypes a normalised image may be stored in (the cache's --cache_dtype): float16 keeps
# a relative precision of 5e-4, enough for whitened intensities, in half the bytes.
STORAGE_DTYPES = ("float16", "float32")

WHITENING_MIN_STD = 1e-5


def present_modalities(image: np.ndarray) -> np.ndarray:
    """Which channels of an image hold any non-zero voxel.

    Args:
        image: [X, Y, Z, 4].

    Returns:
        bool [4].
    """
    return np.any(np.asarray(image).reshape(-1, image.shape[-1]) != 0, axis=0)


THREADS = 2       # modalities normalised side by side (NumPy and SciPy release the GIL)


def per_modality(fn: Callable[[int], Any], channels: Iterable) -> list:
    """Per-channel work, two channels at a time on threads: the chain's per-modality work
    takes 1.0-1.4 s instead of 1.9-3.5 s on a BraTS-size case, with the same values.

    Args:
        fn: the work on one channel index.
        channels: the channel indices.

    Returns:
        [fn(i) for i in channels].
    """
    channels = [int(i) for i in channels]
    if len(channels) < 2:
        return [fn(i) for i in channels]
    with concurrent.futures.ThreadPoolExecutor(min(THREADS, len(channels))) as pool:
        return list(pool.map(fn, channels))


def foreground_mask(image: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """The 'mean_plus' foreground, and-ed over the present modalities.

    Args:
        image: [X, Y, Z, 4].
        present: bool [4] (None: `present_modalities`).

    Returns:
        bool [X, Y, Z].
    """
    present = present_modalities(image) if present is None else present
    mask = np.ones(image.shape[:3], bool)
    for one in per_modality(lambda i: mean_plus_mask(image[..., i]), np.flatnonzero(present)):
        mask &= one
    return mask


def whiten(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(x - mean) / max(std, 1e-5) with the foreground's mean and (population) std, computed in
    float64 (the export's graph does the same, so both chains agree to float rounding).

    Args:
        volume: a 3-D volume.
        mask: its foreground.

    Returns:
        float64, the same shape.
    """
    volume = np.asarray(volume, np.float64)
    values = volume[mask]
    return (volume - values.mean()) / max(float(values.std()), WHITENING_MIN_STD)


def normalise_intensities(image: np.ndarray, landmarks: dict, cutoff: tuple = DEFAULT_CUTOFF,
                          padding: int = 10) -> np.ndarray:
    """The release's intensity chain: padding, the 'mean_plus' foreground, Nyúl
    standardisation and whitening of each present modality.

    Args:
        image: [X, Y, Z, 4] (missing modalities zeros).
        landmarks: {modality: 13 landmarks} of the present modalities.
        cutoff: the lowest and highest percentiles (as fractions).
        padding: voxels of edge padding while the foreground is found.

    Returns:
        float32 [X, Y, Z, 4] (missing modalities zeros).

    Raises:
        ValueError: a misshapen or empty image, missing landmarks, an empty foreground.
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise ValueError(f"normalise_intensities takes a [X, Y, Z, {len(MODALITIES)}] volume "
                         f"(channels {', '.join(MODALITIES)}), got shape {image.shape}.")
    present = present_modalities(image)
    if not present.any():
        raise ValueError("All four modalities are empty (all zeros): nothing to normalise.")
    missing = [m for m, p in zip(MODALITIES, present) if p and m not in landmarks]
    if missing:
        raise ValueError(f"No histogram landmarks for {', '.join(missing)}.")
    p = int(padding)
    padded = np.pad(image, [(p, p)] * 3 + [(0, 0)], mode="minimum") if p else image.copy()
    mask = foreground_mask(padded, present)
    if not mask.any():
        raise ValueError("The foreground (and of the modalities' 'mean_plus' masks) is empty: "
                         "are the modalities co-registered?")
    out = np.zeros_like(padded)

    def standardised(i):
        out[..., i] = whiten(apply_landmarks(padded[..., i], mask, landmarks[MODALITIES[i]],
                                             cutoff), mask)

    per_modality(standardised, np.flatnonzero(present))
    if p:
        out = out[p:-p, p:-p, p:-p]
    return out.astype(np.float32)


def prepare_image(image: np.ndarray, landmarks: dict, cutoff: tuple = DEFAULT_CUTOFF,
                  padding: int = 10, do_crop: bool = True,
                  flipped: tuple = (False, False, False)) -> tuple[np.ndarray, CropBox]:
    """The release's chain on a raw image: the crop to the non-zero box, then
    `normalise_intensities`.

    Args:
        image: RAS [X, Y, Z, 4] (missing modalities zeros).
        landmarks: {modality: 13 landmarks}.
        cutoff: the lowest and highest percentiles (as fractions).
        padding: of `normalise_intensities`.
        do_crop: False: the whole volume.
        flipped: the RAS axes the file stores reversed (the crop's rule is in the file's
            voxel order: `crop.crop_box`).

    Returns:
        (float32 image, CropBox).
    """
    image = np.asarray(image, np.float32)
    shape = tuple(int(s) for s in image.shape[:3])
    box = crop_box(image, flipped=flipped) if do_crop else CropBox((0, 0, 0), shape, shape)
    return normalise_intensities(crop(image, box), landmarks, cutoff, padding), box
