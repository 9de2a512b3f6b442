"""Resampling volumes: to the model's voxel size and back, and between the grids of one exam.

The release resampled every input to its training voxel size (`pixdim`, cubic for images,
nearest for labels) before anything else; so do training, predict and evaluate here, and the
outputs are brought back to the input's grid (class probabilities, linearly, then the argmax,
as nnU-Net does: never the labels).

`SpacingChange(shape, zooms, spacing)` is one change of voxel size over the same field of view,
on RAS arrays whose axes carry voxel sizes `zooms` (mm). The output has
`round(shape * zooms / spacing)` voxels per axis (at least one), and the two grids share their
outer faces: output voxel j sits at input coordinate `(j + 1/2) * s - 1/2` with
`s = shape / out_shape` (so the voxel size after resampling is `zooms * s`, within half a
voxel of `spacing` over the field of view). `to_model` and `to_input` resample either way;
`affine(ras_affine)` is the output grid's voxel-to-world matrix.

`onto_grid(volume, source_affine, target_affine, target_shape, order)` resamples a volume into
another grid through world coordinates (no registration: the two must already share the
scanner's space); voxels outside the source's field of view are 0.

All interpolation is `scipy.ndimage` B-spline interpolation: order 3 (cubic) for images, 1
(linear) for probabilities and other outputs, 0 (nearest) for labels; beyond a volume's faces
the edge value is repeated (`mode="nearest"`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

SPACING_RTOL = 0.01          # voxel sizes within 1% are the same (header rounding)
WORKING_COPIES = 4           # float32 copies of one channel alive while resampling one


def same_spacing(zooms: Sequence[float], spacing: Sequence[float],
                 rtol: float = SPACING_RTOL) -> bool:
    """Whether two sets of voxel sizes agree.

    Args:
        zooms: voxel sizes (mm) per axis.
        spacing: the others, in the same order.
        rtol: the relative tolerance (header rounding).

    Returns:
        True when every axis agrees to `rtol`.
    """
    return bool(np.allclose(np.asarray(zooms, np.float64), np.asarray(spacing, np.float64),
                            rtol=rtol, atol=0))


def mm(zooms: Sequence[float]) -> str:
    """Voxel sizes as text.

    Args:
        zooms: voxel sizes (mm).

    Returns:
        e.g. "1x1x5 mm".
    """
    return "x".join(f"{float(z):.3g}" for z in zooms) + " mm"


def check_spacing(zooms: Sequence[float], source: str) -> None:
    """Refuses voxel sizes that are not finite and positive (a damaged header).

    Args:
        zooms: voxel sizes (mm).
        source: the file or input they are of (for the message).

    Raises:
        ValueError: naming `source` and the way out.
    """
    values = [float(z) for z in zooms]
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{source}: voxel sizes {values} mm; expected three finite positive "
                         "sizes: the header's affine or pixdim is damaged; fix it (e.g. "
                         "re-export the image from the scanner's DICOM).")


def check_memory(shape: Sequence[int], channels: int, source: str, available: int) -> None:
    """Refuses resampling onto a grid that would not fit in memory.

    Args:
        shape: the grid's voxels per axis.
        channels: float32 values per voxel.
        source: the input (for the message).
        available: bytes of memory available.

    Raises:
        ValueError: giving the size and a way out.
    """
    voxels = int(np.prod([int(s) for s in shape], dtype=np.float64))
    needed = voxels * 4 * (channels + WORKING_COPIES)
    if needed > available:
        raise ValueError(f"{source}: resampled to the model's voxel size it would be "
                         f"{'x'.join(str(int(s)) for s in shape)} voxels ({needed / 2 ** 30:.1f}"
                         f" GB to process, {available / 2 ** 30:.1f} GB available). Crop the "
                         "image to the head first, or use a machine with more memory.")


@dataclasses.dataclass(frozen=True)
class SpacingChange:
    """One change of voxel size over the same field of view (see the module docstring)."""
    shape: tuple                 # input voxels per RAS axis
    zooms: tuple                 # input voxel sizes (mm) per RAS axis
    spacing: tuple               # the voxel sizes asked for (mm)

    @property
    def out_shape(self) -> tuple:
        """Output voxels per RAS axis (the same field of view at `spacing`)."""
        return tuple(max(1, int(round(n * z / s)))
                     for n, z, s in zip(self.shape, self.zooms, self.spacing))

    @property
    def scale(self) -> np.ndarray:
        """Input voxels per output voxel, per axis."""
        return np.asarray(self.shape, np.float64) / np.asarray(self.out_shape, np.float64)

    @property
    def out_zooms(self) -> tuple:
        """The output's voxel sizes (mm): `spacing`, up to the rounding of `out_shape`."""
        return tuple(float(z * s) for z, s in zip(self.zooms, self.scale))

    def affine(self, ras_affine: np.ndarray) -> np.ndarray:
        """The output grid's voxel-to-world matrix.

        Args:
            ras_affine: the input's (RAS voxel order).

        Returns:
            4x4 float64.
        """
        step = np.eye(4)
        step[:3, :3] = np.diag(self.scale)
        step[:3, 3] = 0.5 * self.scale - 0.5
        return np.asarray(ras_affine, np.float64) @ step

    def to_model(self, volume: np.ndarray, order: int) -> np.ndarray:
        """A volume on the input grid resampled to the output's.

        Args:
            volume: [X, Y, Z] or [X, Y, Z, C].
            order: of the spline (0 nearest, 1 linear, 3 cubic).

        Returns:
            The volume on the output grid (float32, or the input's dtype for order 0).
        """
        return _axis_aligned(volume, self.scale, 0.5 * self.scale - 0.5, self.out_shape,
                             order=order)

    def to_input(self, volume: np.ndarray, order: int) -> np.ndarray:
        """A volume on the output grid resampled back to the input's.

        Args:
            volume: [X, Y, Z] or [X, Y, Z, C].
            order: of the spline.

        Returns:
            The volume on the input grid.
        """
        inverse = 1.0 / self.scale
        return _axis_aligned(volume, inverse, 0.5 * inverse - 0.5, self.shape, order=order)


def spacing_change(shape: Sequence[int], zooms: Sequence[float],
                   spacing: Sequence[float] | None) -> SpacingChange | None:
    """The change of voxel size an input needs.

    Args:
        shape: the input's voxels per RAS axis.
        zooms: its voxel sizes (mm).
        spacing: the sizes asked for (None: none).

    Returns:
        The SpacingChange, or None when the sizes agree (`same_spacing`).
    """
    check_spacing(zooms, "the input")
    if spacing is None or same_spacing(zooms, spacing):
        return None
    return SpacingChange(tuple(int(s) for s in shape[:3]), tuple(float(z) for z in zooms),
                         tuple(float(s) for s in spacing))


def _axis_aligned(volume, matrix, offset, out_shape, order):
    """Each channel of `volume` sampled at input coordinates `matrix * j + offset`."""
    volume = np.asarray(volume)
    dtype = np.float32 if order > 0 else volume.dtype
    if volume.ndim == 3:
        return _sample(volume, matrix, offset, out_shape, order=order).astype(dtype)
    out = np.empty((*out_shape, volume.shape[-1]), dtype)
    for c in range(volume.shape[-1]):
        out[..., c] = _sample(volume[..., c], matrix, offset, out_shape, order=order)
    return out


def _sample(channel, matrix, offset, out_shape, order, mode="nearest"):
    source = channel if order == 0 else np.asarray(channel, np.float32)
    return ndimage.affine_transform(source, matrix, offset=offset, output_shape=tuple(out_shape),
                                    order=order, mode=mode, cval=0.0, prefilter=order > 1)


def onto_grid(volume: np.ndarray, source_affine: np.ndarray, target_affine: np.ndarray,
              target_shape: Sequence[int], order: int) -> np.ndarray:
    """A volume sampled at the voxel centres of another grid of the same world; 0 outside its
    field of view (the spline itself extends the edge values, so the faces are not dimmed by
    the zeros).

    Args:
        volume: [X, Y, Z].
        source_affine: its voxel-to-world matrix.
        target_affine: the grid's.
        target_shape: the grid's shape.
        order: of the spline.

    Returns:
        The volume on the grid.
    """
    to_source = np.linalg.inv(np.asarray(source_affine, np.float64)) @ \
        np.asarray(target_affine, np.float64)
    volume = np.asarray(volume)
    matrix, offset = to_source[:3, :3], to_source[:3, 3]
    out = _sample(volume, matrix, offset, target_shape, order=order)
    inside = _sample(np.ones(volume.shape, np.uint8), matrix, offset, target_shape, order=0,
                     mode="constant")
    out[inside == 0] = 0
    return out if order > 0 else out.astype(volume.dtype)


def world_box(affine: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The world extent of a grid.

    Args:
        affine: its voxel-to-world matrix.
        shape: its shape.

    Returns:
        (lowest, highest) world coordinates (mm) of the outer faces of its voxels.
    """
    corners = np.array([[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)], np.float64)
    world = corners @ np.asarray(affine, np.float64)[:3, :3].T + np.asarray(affine)[:3, 3]
    return world.min(0), world.max(0)


def image_resampled(volume: np.ndarray, sample: Callable) -> np.ndarray:
    """An image resampled cubically, its zero background kept exactly zero: a voxel is kept
    where the linearly resampled support (the non-zero voxels) covers at least half of it.
    Without this, the cubic spline's ringing would leave tiny values everywhere and move the
    non-zero crop box to the whole field of view.

    Args:
        volume: the image.
        sample: `sample(array, order)`, e.g. `change.to_model`.

    Returns:
        float32, resampled.
    """
    volume = np.asarray(volume, np.float32)
    out = sample(volume, 3)
    support = sample((volume != 0).astype(np.float32), 1)
    out[support < 0.5] = 0.0
    return out
