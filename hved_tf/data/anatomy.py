"""Phantoms that look like brains: the MNI ICBM152 2009 template and its tissue maps (bundled in
the installed nilearn package, read at run time, never copied here) with a grown tumour, four
MRI contrasts and a scanner's effects.

Each subject, deterministic for its seed:
- anatomy: the template's grey- and white-matter probability maps (CSF: the template's brain
  minus both), resampled to `voxel_mm`, with a random smooth deformation (a few mm) and a
  random affine (head size 0.9-1.1 per axis, pose within 10 degrees, position within 6 mm),
  so that no two subjects share where their structures are;
- a tumour at a random white-matter site: a core (radius 10-22 mm, irregular) pushing the
  tissue around it aside (mass effect: a monotone radial displacement, no folding), oedema
  spreading around it through the white matter, and in most cases (HGG-like) a patchy
  enhancing part in the core's outer layer, the rest necrotic; a quarter of the cases
  (LGG-like) have no enhancement;
- contrasts from the tissue fractions (`CONTRASTS`: the known relative intensities: CSF dark
  in T1 and FLAIR, bright in T2; white brighter than grey matter in T1, darker in T2; oedema
  bright in T2 and FLAIR); necrotic and enhancing voxels look the same in every sequence but
  T1c, where the enhancing ones are the brightest tissue, so only T1c tells them apart;
- the scanner (`ScannerProfile`): a global intensity scale, a smooth multiplicative bias
  field, Rician noise, a resolution loss (Gaussian blur per axis), and the orientation of the
  files; zero outside the brain (skull-stripped, as BraTS).

`write_anatomical_dataset(out, n, voxel_mm, ...)` writes them as a BraTS dataset (2023 layout by
default: labels 1 necrotic/non-enhancing core, 2 oedema, 3 enhancing). A nilearn without the
bundled templates is refused with what to install. Pure NumPy/SciPy.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib

import nibabel as nib
import numpy as np
from scipy import ndimage

from hved_tf.data.synthetic import _smooth_noise, write_dataset
from hved_tf.modalities import MODALITIES

TEMPLATE_FILES = {"t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
                  "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                  "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"}
VOXEL_RANGE_MM = (1.0, 4.0)
# Raised whenever the generator changes what it draws: the demo's phantom folder is named with
# it, so that phantoms of an older generator left in a cache are not reused.
GENERATOR_VERSION = 2

# Relative mean intensity of each tissue (arbitrary units; the scanner's scale multiplies).
#          CSF   GM    WM    oedema  core (necrotic or non-enhancing)  enhancing
CONTRASTS = {
    "T1":    (0.30, 0.60, 0.85, 0.55, 0.40, 0.40),
    "T1c":   (0.30, 0.62, 0.86, 0.57, 0.40, 1.45),
    "T2":    (1.50, 0.85, 0.60, 1.20, 1.35, 1.35),
    "FLAIR": (0.25, 0.80, 0.65, 1.45, 1.05, 1.05),
}
SCALES = {"T1": 600.0, "T1c": 900.0, "T2": 1200.0, "FLAIR": 500.0}


@dataclasses.dataclass(frozen=True)
class ScannerProfile:
    """A scanner's effects on the images (see the module docstring)."""
    scale: tuple = (0.8, 1.25)        # global intensity factor, uniform in this range
    bias: float = 0.15                # amplitude of the log bias field
    noise: float = 0.03               # Rician noise std, relative to the brain's mean
    blur_mm: tuple = (0.0, 0.0, 0.0)  # Gaussian sigma per axis (a thicker slice: z)
    lps_every: int = 3                # every k-th subject stored in LPS (0: none)

    def validate(self):
        if not 0 < self.scale[0] <= self.scale[1] or not 0 <= self.bias <= 1 \
                or not 0 <= self.noise <= 0.5 or any(not 0 <= b <= 5 for b in self.blur_mm):
            raise ValueError(f"Scanner profile out of range: {self}.")
        return self


PROFILES = {
    "default": ScannerProfile(),
    # Unseen scanners of the robustness benchmark: other scales, stronger bias fields, more
    # noise, thick slices, another orientation.
    "bright_biased": ScannerProfile(scale=(2.5, 4.0), bias=0.45, noise=0.03, lps_every=1),
    "noisy_thick": ScannerProfile(scale=(0.3, 0.5), bias=0.25, noise=0.09,
                                  blur_mm=(0.6, 0.6, 2.0), lps_every=0),
}


def template_paths():
    """{"t1", "gm", "wm": path} of the templates bundled in the installed nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("The anatomical phantoms need nilearn's bundled MNI152 templates, and "
                         "nilearn is not installed: pip install 'nilearn>=0.10' (the README's "
                         "install command includes it), or use --demo_phantoms=ellipsoid.")
    data = pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    paths = {k: data / name for k, name in TEMPLATE_FILES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise ValueError(f"This nilearn ({data.parent.parent}) has no bundled MNI152 2009 "
                         f"template files ({', '.join(missing)}): an old or stripped install. "
                         "pip install --force-reinstall 'nilearn>=0.10', or use "
                         "--demo_phantoms=ellipsoid.")
    return paths


@functools.lru_cache(maxsize=4)
def tissue_maps(voxel_mm=2.0):
    """{"csf", "gm", "wm"}: float32 fractions on the template's grid at `voxel_mm` (RAS)."""
    if not VOXEL_RANGE_MM[0] <= voxel_mm <= VOXEL_RANGE_MM[1]:
        raise ValueError(f"--demo_voxel_mm must be in [{VOXEL_RANGE_MM[0]}, "
                         f"{VOXEL_RANGE_MM[1]}] mm, got {voxel_mm}.")
    maps = {}
    for key, path in template_paths().items():
        img = nib.as_closest_canonical(nib.load(path))
        data = np.asanyarray(img.dataobj).astype(np.float32) / 255.0
        maps[key] = ndimage.zoom(data, 1.0 / voxel_mm, order=1) if voxel_mm != 1 else data
    brain = maps.pop("t1") > 0.05
    gm, wm = np.clip(maps["gm"], 0, 1) * brain, np.clip(maps["wm"], 0, 1) * brain
    total = np.maximum(gm + wm, 1.0)
    gm, wm = gm / total, wm / total
    return {"csf": np.where(brain, 1.0 - gm - wm, 0.0).astype(np.float32),
            "gm": gm.astype(np.float32), "wm": wm.astype(np.float32)}


@functools.lru_cache(maxsize=4)
def _depth(voxel_mm):
    """Distance (mm) of each voxel to the outside of the template's parenchyma."""
    maps = tissue_maps(voxel_mm)
    return ndimage.distance_transform_edt(maps["wm"] + maps["gm"] > 0.3) * voxel_mm


def _grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape],
                                indexing="ij"))


def _sample(volume, coords):
    return ndimage.map_coordinates(volume, coords, order=1, mode="constant", cval=0.0)


def _affine(rng, voxel_mm, shape):
    """A subject's head size, pose and position: (matrix, offset) mapping an output voxel's
    (warped) position to the template's, about the grid's centre: per-axis scale 0.9-1.1,
    rotations of up to 10 degrees about each axis, a shift of up to 6 mm."""
    matrix = np.diag(rng.uniform(0.9, 1.1, 3))
    for axis, angle in enumerate(np.radians(rng.uniform(-10.0, 10.0, 3))):
        i, j = [a for a in range(3) if a != axis]
        rotation = np.eye(3)
        rotation[[i, i, j, j], [i, j, i, j]] = (np.cos(angle), -np.sin(angle),
                                                np.sin(angle), np.cos(angle))
        matrix = rotation @ matrix
    mid = (np.asarray(shape, np.float64) - 1.0) / 2.0
    offset = mid - matrix @ mid + rng.uniform(-6.0, 6.0, 3) / voxel_mm
    return matrix.astype(np.float32), offset.astype(np.float32)


def _source_coords(shape, rng, voxel_mm, site, push_mm):
    """Where each output voxel reads the template from: a smooth random deformation (about
    4 mm), then the subject's affine (`_affine`), then the tumour's mass effect about the
    template `site` (sources pulled towards it: tissue pushed out). Returns the coordinates
    and where the site lands in the output."""
    grid = _grid(shape)
    warp = np.stack([_smooth_noise(shape, rng, coarse=4) for _ in range(3)])
    matrix, offset = _affine(rng, voxel_mm, shape)
    coords = np.einsum("ij,j...->i...", matrix, grid + warp * (4.0 / voxel_mm)) \
        + offset.reshape(3, 1, 1, 1)
    centre = np.linalg.solve(matrix, site - offset).astype(np.float32)
    delta = coords - site.reshape(3, 1, 1, 1)
    r = np.sqrt(np.sum(delta ** 2, axis=0)) + 1e-6
    reach = 2.5 * push_mm / voxel_mm
    pull = (push_mm / voxel_mm) * np.exp(-(r / reach) ** 2)              # r - pull(r): monotone
    return site.reshape(3, 1, 1, 1) + delta * (np.maximum(r - pull, 0.0) / r), centre


def _tumour(shape, rng, voxel_mm, centre, radius_mm, wm, enhancing):
    """Training labels (0 background, 1 core, 2 oedema, 3 enhancing) of a grown tumour."""
    d = np.sqrt(np.sum((_grid(shape) - centre.reshape(3, 1, 1, 1)) ** 2, axis=0)) * voxel_mm
    core_d = d * (1.0 + 0.22 * _smooth_noise(shape, rng, coarse=5))
    core = core_d < radius_mm
    spread = radius_mm * rng.uniform(1.5, 2.2)
    oedema_d = d * (1.0 + 0.3 * _smooth_noise(shape, rng, coarse=5))
    oedema = (oedema_d < spread) & (wm + 0.25 > 0.45 + 0.1 * _smooth_noise(shape, rng, 4))
    label = np.zeros(shape, np.uint8)
    label[oedema | ndimage.binary_dilation(core, iterations=1)] = 2
    label[core] = 1
    if enhancing:
        thickness = rng.uniform(2.0, min(8.0, 0.45 * radius_mm))          # mm: a core left
        shell = core & (core_d > radius_mm - thickness)
        patchy = _smooth_noise(shape, rng, coarse=7) > rng.uniform(-1.0, 0.4)
        inner = core & (_smooth_noise(shape, rng, coarse=9) > 0.9)       # blobs inside
        deep = core_d < 0.35 * radius_mm                                  # necrotic centre
        label[((shell & patchy) | inner) & ~deep] = 3
    return label


def make_anatomical_phantom(seed=0, voxel_mm=2.0, profile=ScannerProfile(),
                            label_values=(0, 1, 2, 3)):
    """({modality: float32 [X, Y, Z]}, label uint8 [X, Y, Z]) in RAS voxel order."""
    profile.validate()
    maps = tissue_maps(float(voxel_mm))
    shape = maps["wm"].shape
    rng = np.random.default_rng(seed)
    radius_mm = rng.uniform(10.0, 22.0)
    depth = _depth(float(voxel_mm))
    sites = np.argwhere((maps["wm"] > 0.6) & (depth > 0.6 * radius_mm + 6.0))
    site = sites[rng.integers(len(sites))].astype(np.float32)
    coords, centre = _source_coords(shape, rng, voxel_mm, site, push_mm=0.6 * radius_mm)
    tissue = {k: _sample(v, coords) for k, v in maps.items()}
    brain = (tissue["csf"] + tissue["gm"] + tissue["wm"]) > 0.5
    enhancing = rng.uniform() > 0.25                                      # HGG-like
    label = _tumour(shape, rng, voxel_mm, centre, radius_mm=radius_mm, wm=tissue["wm"],
                    enhancing=enhancing) * brain
    # Tissue fractions with partial volume at the tumour's borders.
    parts = [ndimage.gaussian_filter((label == c).astype(np.float32), 0.6) for c in (2, 1, 3)]
    tumour = np.clip(sum(parts), 0.0, 1.0)
    fractions = [tissue[k] * (1.0 - tumour) for k in ("csf", "gm", "wm")] + parts
    images = {}
    texture = 1.0 + 0.04 * _smooth_noise(shape, rng, coarse=12)
    for modality in MODALITIES:
        image = sum(f * m for f, m in zip(fractions, CONTRASTS[modality])) * texture
        images[modality] = image.astype(np.float32)
    return _scanner(images, brain, rng, voxel_mm, profile=profile), \
        np.asarray(label_values, np.uint8)[label]


def _scanner(images, brain, rng, voxel_mm, profile):
    out = {}
    for modality, image in images.items():
        sigma = [b / voxel_mm for b in profile.blur_mm]
        if any(sigma):
            image = ndimage.gaussian_filter(image, sigma)
        image = image * np.exp(profile.bias * _smooth_noise(image.shape, rng, coarse=3))
        level = float(image[brain].mean())
        noise = profile.noise * level
        image = np.sqrt((image + rng.normal(0, noise, image.shape)) ** 2
                        + rng.normal(0, noise, image.shape) ** 2)          # Rician
        scale = SCALES[modality] * rng.uniform(*profile.scale)
        out[modality] = np.where(brain, image * scale, 0.0).astype(np.float32)
    return out


def write_anatomical_dataset(out, n, voxel_mm=2.0, seed=0, layout="brats2023",
                             profile="default", progress=None):
    """Writes `n` anatomical phantoms under `out` (subject i: seed (seed, i)); returns the
    ids. `profile`: a name of `PROFILES` or a ScannerProfile."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"Unknown scanner profile {profile!r}: expected one of "
                             f"{', '.join(PROFILES)}.")
        profile = PROFILES[profile]
    profile.validate()
    tissue_maps(float(voxel_mm))                     # refuses a bad size or install first
    return write_dataset(
        out, n, lambda s, values: make_anatomical_phantom(s, voxel_mm, profile, values), seed,
        layout=layout, lps_every=profile.lps_every, progress=progress, voxel_mm=voxel_mm)
