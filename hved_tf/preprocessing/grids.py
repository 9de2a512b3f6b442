"""The sequences of one exam on one grid: a reference grid, and the others resampled onto it in
world coordinates.

In a clinical exam each sequence is often acquired on its own grid (an axial FLAIR at
0.9x0.9x5 mm, a 3-D T1c at 1 mm). Within one session they share the scanner's world
coordinates, so putting them on one grid is a resampling, not a registration. The reference
grid is the present sequence with the finest voxels (the smallest voxel volume; the first in
modality order on a tie), or the one the user names. Images are resampled cubically, labels
by nearest neighbour; outside a sequence's field of view its voxels are 0 (background).

Files from different sessions, or that need registration, are refused rather than mixed: when
their fields of view do not overlap, or their centres lie more than
`MAX_CENTRE_DISTANCE_MM` apart. No registration is ever done here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hved_tf.io.nifti import AFFINE_TOLERANCE, Geometry
from hved_tf.preprocessing.resample import image_resampled, onto_grid, world_box

MAX_CENTRE_DISTANCE_MM = 50.0


def same_grid(a: Geometry, b: Geometry) -> bool:
    """Whether two files hold the same voxels once in RAS order (whatever order each file
    stores them in).

    Args:
        a: a file's Geometry.
        b: another's.

    Returns:
        True for the same RAS shape and voxel-to-world affine.
    """
    return a.ras_shape == b.ras_shape and np.allclose(a.ras_affine, b.ras_affine,
                                                      atol=AFFINE_TOLERANCE)


def reference_index(geometries: list[Geometry], names: Sequence[str],
                    reference: str = "") -> int:
    """Which grid the others are resampled onto.

    Args:
        geometries: the files' Geometries.
        names: their modalities, in the same order.
        reference: a modality ("": the finest voxels).

    Returns:
        The index of the reference grid.

    Raises:
        ValueError: `reference` is not among `names`.
    """
    names = list(names)
    if reference:
        if reference not in names:
            raise ValueError(f"--reference_sequence {reference}: that sequence is not among "
                             f"the subject's ({', '.join(names)}).")
        return names.index(reference)
    volumes = [float(np.prod(g.zooms)) for g in geometries]
    return int(np.argmin(np.round(volumes, 6)))


def _describe(name, geometry):
    return f"{name} ({geometry.path})" if name else geometry.path


def check_one_exam(geometries: list[Geometry], names: Sequence[str]) -> None:
    """Refuses grids that cannot come from one session (see the module docstring).

    Args:
        geometries: the files' Geometries, the reference first.
        names: their modalities.

    Raises:
        ValueError: one message naming the files and the distance.
    """
    boxes = [world_box(g.affine, g.shape) for g in geometries]
    centres = [(lo + hi) / 2 for lo, hi in boxes]
    for k in range(1, len(geometries)):
        distance = float(np.linalg.norm(centres[k] - centres[0]))
        apart = np.maximum(boxes[k][0] - boxes[0][1], boxes[0][0] - boxes[k][1])
        which = f"{_describe(names[k], geometries[k])} and {_describe(names[0], geometries[0])}"
        if np.any(apart >= 0):
            raise ValueError(f"{which} do not overlap in world space (their centres are "
                             f"{distance:.0f} mm apart): they are not one exam, or need "
                             "registration first (e.g. ANTs, FSL FLIRT).")
        if distance > MAX_CENTRE_DISTANCE_MM:
            raise ValueError(f"{which} are {distance:.0f} mm apart in world space (centre to "
                             f"centre; more than {MAX_CENTRE_DISTANCE_MM:.0f} mm): they are "
                             "not one exam, or need registration first (e.g. ANTs, FSL FLIRT).")


def checked_reference(geometries: list[Geometry], names: Sequence[str],
                      reference: str = "") -> int:
    """The reference grid, the others checked to be of one exam with it when they lie on
    other grids.

    Args:
        geometries: the files' Geometries.
        names: their modalities.
        reference: a modality ("": the finest voxels).

    Returns:
        The index of the reference grid (`reference_index`).

    Raises:
        ValueError: from `reference_index` or `check_one_exam`.
    """
    names = list(names)
    ref = reference_index(geometries, names, reference)
    if not all(same_grid(g, geometries[ref]) for g in geometries):
        others = [k for k in range(len(geometries)) if k != ref]
        check_one_exam([geometries[ref]] + [geometries[k] for k in others],
                       [names[ref]] + [names[k] for k in others])
    return ref


def images_onto(volumes: list[np.ndarray], geometries: list[Geometry],
                target: Geometry) -> list[np.ndarray]:
    """Images resampled onto one grid: cubic in world coordinates, their zero background kept
    zero (`image_resampled`: cubic ringing would otherwise spread tiny values over the
    background and move the crop box); those already on it as they are.

    Args:
        volumes: RAS arrays, each on its own grid.
        geometries: their Geometries.
        target: the grid's Geometry.

    Returns:
        The volumes on `target`'s RAS grid.
    """
    def sample_from(geometry):
        return lambda array, order: onto_grid(array, geometry.ras_affine, target.ras_affine,
                                              target.ras_shape, order=order)
    return [volume if same_grid(geometry, target) else
            image_resampled(volume, sample_from(geometry))
            for volume, geometry in zip(volumes, geometries)]
