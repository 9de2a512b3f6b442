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

import numpy as np

from hved_tf.modalities import MODALITIES
from hved_tf.preprocessing.crop import CropBox, crop, crop_box
from hved_tf.preprocessing.histogram import DEFAULT_CUTOFF, apply_landmarks, mean_plus_mask

# The dtypes a normalised image may be stored in (the cache's --cache_dtype): float16 keeps
# a relative precision of 5e-4, enough for whitened intensities, in half the bytes.
STORAGE_DTYPES = ("float16", "float32")

WHITENING_MIN_STD = 1e-5


def present_modalities(image):
    """Booleans [4]: which channels hold any non-zero voxel."""
    return np.any(np.asarray(image).reshape(-1, image.shape[-1]) != 0, axis=0)


THREADS = 2       # modalities normalised side by side (NumPy and SciPy release the GIL)


def per_modality(fn, channels):
    """[fn(i) for i in channels], two at a time on threads: the chain's per-modality work
    takes 1.0-1.4 s instead of 1.9-3.5 s on a BraTS-size case, with the same values."""
    channels = [int(i) for i in channels]
    if len(channels) < 2:
        return [fn(i) for i in channels]
    with concurrent.futures.ThreadPoolExecutor(min(THREADS, len(channels))) as pool:
        return list(pool.map(fn, channels))


def foreground_mask(image, present=None):
    """The 'mean_plus' foreground, and-ed over the present modalities: bool [X, Y, Z]."""
    present = present_modalities(image) if present is None else present
    mask = np.ones(image.shape[:3], bool)
    for one in per_modality(lambda i: mean_plus_mask(image[..., i]), np.flatnonzero(present)):
        mask &= one
    return mask


def whiten(volume, mask):
    """(x - mean) / max(std, 1e-5) with the foreground's mean and (population) std, computed in
    float64 (the export's graph does the same, so both chains agree to float rounding)."""
    volume = np.asarray(volume, np.float64)
    values = volume[mask]
    return (volume - values.mean()) / max(float(values.std()), WHITENING_MIN_STD)


def normalise_intensities(image, landmarks, cutoff=DEFAULT_CUTOFF, padding=10):
    """The whole chain on a [X, Y, Z, 4] volume; float32 [X, Y, Z, 4]."""
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


def prepare_image(image, landmarks, cutoff=DEFAULT_CUTOFF, padding=10, do_crop=True,
                  flipped=(False, False, False)):
    """The release's chain on a raw RAS image [X, Y, Z, 4] (missing modalities zeros): the crop
    to the non-zero box (in the file's voxel order: `flipped`, see `crop.crop_box`), then
    `normalise_intensities`. Returns (float32 image, CropBox)."""
    image = np.asarray(image, np.float32)
    shape = tuple(int(s) for s in image.shape[:3])
    box = crop_box(image, flipped=flipped) if do_crop else CropBox((0, 0, 0), shape, shape)
    return normalise_intensities(crop(image, box), landmarks, cutoff, padding), box
