"""NIfTI reading and writing with nibabel, in RAS for processing and back in the input's geometry.

`load_nifti(path)` returns the voxel array reoriented to RAS (axes Right, Anterior, Superior, by
flips and transpositions only: no resampling) and a `Geometry` that remembers how to undo it.
`save_nifti(path, array, geometry)` undoes the reorientation and writes with the input's own
header: affine, qform/sform and their codes, zooms. Files are written under a temporary name in
the same folder and renamed when complete, so a killed run never leaves a half-written file.
"""
from __future__ import annotations

import dataclasses
import pathlib

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_lib

from hved_tf.io.atomic import atomic_path

AFFINE_TOLERANCE = 1e-3


@dataclasses.dataclass
class Geometry:
    """How a file's voxels map to RAS, and the header to write results with."""
    path: str
    shape: tuple                 # on disk
    affine: np.ndarray           # on disk
    header: nib.Nifti1Header
    to_ras: np.ndarray           # nibabel orientation transform, disk -> RAS

    @property
    def ras_affine(self):
        return self.affine @ ornt_lib.inv_ornt_aff(self.to_ras, self.shape)

    @property
    def ras_shape(self):
        return tuple(int(self.shape[int(i)]) for i in np.argsort(self.to_ras[:, 0]))

    @property
    def ras_zooms(self):
        """Voxel sizes (mm) along the RAS axes."""
        zooms = self.zooms
        return tuple(zooms[int(i)] for i in np.argsort(self.to_ras[:, 0]))

    @property
    def axcodes(self):
        return "".join(nib.aff2axcodes(self.affine))

    @property
    def zooms(self):
        return tuple(float(z) for z in self.header.get_zooms()[:3])


def _read(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found.")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable NIfTI file ({err}).") from None
    return path, img, data


def load_nifti(path, kind="image"):
    """(array in RAS, Geometry). kind "image": float32, checked for NaN/Inf and all zeros;
    kind "label": integers as stored."""
    if kind not in ("image", "label"):
        raise ValueError(f"kind must be 'image' or 'label', got {kind!r}.")
    path, img, data = _read(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {data.shape}. Split 4-D "
                         "series into one file per modality.")
    if kind == "image":
        data = data.astype(np.float32, copy=False)
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{path}: holds NaN or infinite voxels; fix or re-export the image.")
        if not np.any(data):
            raise ValueError(f"{path}: the image is all zeros. Leave a missing sequence out "
                             "rather than giving an empty file.")
    else:
        if not np.issubdtype(data.dtype, np.integer):
            if not np.all(np.isfinite(data)) or np.any(np.rint(data) != data):
                raise ValueError(f"{path}: label values must be integers.")
            data = np.rint(data).astype(np.int16)
    geometry = _geometry(path, img, data.shape)
    ras = np.ascontiguousarray(ornt_lib.apply_orientation(data, geometry.to_ras))
    return ras, geometry


def _geometry(path, img, shape):
    to_ras = ornt_lib.ornt_transform(ornt_lib.io_orientation(img.affine),
                                     ornt_lib.axcodes2ornt("RAS"))
    return Geometry(str(path), tuple(int(s) for s in shape[:3]), np.asarray(img.affine),
                    img.header.copy(), to_ras)


def read_geometry(path):
    """The Geometry of a NIfTI file, from its header only (no voxel data read)."""
    path = pathlib.Path(path)
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable NIfTI file ({err}).") from None
    return _geometry(path, img, img.shape)


def check_same_grid(geometries):
    """Raises a ValueError naming the files when shapes or affines differ."""
    first = geometries[0]
    for g in geometries[1:]:
        if g.shape != first.shape:
            raise ValueError(f"{g.path} has shape {g.shape} but {first.path} has {first.shape}: "
                             "the modalities of a subject must be co-registered on one grid.")
        if not np.allclose(g.affine, first.affine, atol=AFFINE_TOLERANCE):
            raise ValueError(f"{g.path} and {first.path} have different affines: the modalities "
                             "of a subject must be co-registered on one grid.")


def _atomic_save(img, path):
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def write_nifti(path, array, affine, kind="image"):
    """Writes a new file (no input geometry to follow): float32 image or uint8 label."""
    array = np.asarray(array)
    data = array.astype(np.uint8 if kind == "label" else np.float32)
    img = nib.Nifti1Image(data, np.asarray(affine, np.float64))
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    _atomic_save(img, path)
    return pathlib.Path(path)


def save_nifti(path, array_ras, geometry, kind="image"):
    """Writes a RAS array back in `geometry`'s orientation, affine and header."""
    array_ras = np.asarray(array_ras)
    if tuple(array_ras.shape[:3]) != geometry.ras_shape:
        raise ValueError(f"Array of shape {array_ras.shape[:3]} does not fit the grid "
                         f"{geometry.ras_shape} of {geometry.path}.")
    back = ornt_lib.ornt_transform(ornt_lib.axcodes2ornt("RAS"),
                                   ornt_lib.io_orientation(geometry.affine))
    data = np.ascontiguousarray(ornt_lib.apply_orientation(array_ras, back))
    header = geometry.header.copy()
    if kind == "label":
        data = data.astype(np.uint8 if data.min() >= 0 and data.max() < 256 else np.int16)
    else:
        data = data.astype(np.float32)
    header.set_data_dtype(data.dtype)
    header["scl_slope"], header["scl_inter"] = 1.0, 0.0
    if data.ndim > 3:
        header.set_data_shape(data.shape)
    img = nib.Nifti1Image(data, geometry.affine, header)
    qform, qcode = geometry.header.get_qform(coded=True)
    sform, scode = geometry.header.get_sform(coded=True)
    if qform is not None:
        img.set_qform(qform, int(qcode))
    if sform is not None:
        img.set_sform(sform, int(scode))
    _atomic_save(img, path)
    return pathlib.Path(path)
