"""NIfTI reading and writing with nibabel, in RAS for processing and back in the input's geometry.

`load_nifti(path)` returns the voxel array reoriented to RAS (axes Right, Anterior, Superior, by
flips and transpositions only: no resampling) and a `Geometry` that remembers how to undo it.
`save_nifti(path, array, geometry)` undoes the reorientation and writes with the input's own
header: affine, qform/sform and their codes, zooms. Files are written under a temporary name in
the same folder and renamed when complete, so a killed run never leaves a half-written file.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import pathlib
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_lib

from hved_tf.io.atomic import atomic_path

AFFINE_TOLERANCE = 1e-3
log = logging.getLogger("hved_tf")


@dataclasses.dataclass
class Geometry:
    """How a file's voxels map to RAS, and the header to write results with."""
    path: str
    shape: tuple                 # on disk
    affine: np.ndarray           # on disk
    header: nib.Nifti1Header
    to_ras: np.ndarray           # nibabel orientation transform, disk -> RAS

    @property
    def ras_affine(self) -> np.ndarray:
        """The voxel-to-world matrix of the volume reoriented to RAS."""
        return self.affine @ ornt_lib.inv_ornt_aff(self.to_ras, self.shape)

    @property
    def ras_shape(self) -> tuple:
        """The shape of the volume reoriented to RAS."""
        return tuple(int(self.shape[int(i)]) for i in np.argsort(self.to_ras[:, 0]))

    @property
    def ras_flips(self) -> tuple:
        """Per RAS axis: True when the file stores it reversed (e.g. L and P of an LPS file)."""
        flips = [False, False, False]
        for ras_axis, direction in self.to_ras[:3]:
            flips[int(ras_axis)] = bool(direction < 0)
        return tuple(flips)

    @property
    def ras_zooms(self) -> tuple:
        """Voxel sizes (mm) along the RAS axes."""
        zooms = self.zooms
        return tuple(zooms[int(i)] for i in np.argsort(self.to_ras[:, 0]))

    @property
    def axcodes(self) -> str:
        """The file's orientation, e.g. "LPS"."""
        return "".join(nib.aff2axcodes(self.affine))

    @property
    def zooms(self) -> tuple:
        """Voxel sizes (mm) on disk, from the affine (as nibabel's and ITK's readers use it),
        not from pixdim, which `check_header` compares with it."""
        return affine_zooms(self.affine)


def affine_zooms(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel sizes along the disk axes of an affine.

    Args:
        affine: a 4x4 voxel-to-world matrix.

    Returns:
        Three sizes in mm.
    """
    return tuple(float(z) for z in np.sqrt(np.sum(np.asarray(affine)[:3, :3] ** 2, axis=0)))


def available_memory() -> int:
    """The memory available to this process.

    Returns:
        Bytes: /proc/meminfo's MemAvailable, else the physical memory.
    """
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _open(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found." if not path.exists() else
                         f"{path}: not a file.")
    try:
        img = nib.load(str(path))
    except Exception as err:  # nibabel raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable NIfTI file ({err or type(err).__name__}).") \
            from None
    check_header(path, img)
    return path, img


def check_header(path: str | os.PathLike, img: Any) -> None:
    """Refuses, from the header alone and before any voxel is read, what cannot be a scalar 3-D
    MRI volume on a valid grid; warns where pixdim or the qform disagree with the affine used.

    Args:
        path: the file (for messages).
        img: its nibabel image.

    Raises:
        ValueError: colour or complex voxels, a size beyond the memory, a singular affine.
    """
    dtype = img.header.get_data_dtype()
    if dtype.fields is not None or dtype.kind == "V":
        raise ValueError(f"{path}: holds {dtype.fields and 'RGB ' or ''}colour voxels "
                         f"({dtype}); give a scalar (grey-level) MRI volume.")
    if dtype.kind == "c":
        raise ValueError(f"{path}: holds complex voxels ({dtype}); give the magnitude image.")
    needed = int(np.prod(img.shape, dtype=np.float64)) * max(8, dtype.itemsize)
    if needed > available_memory():
        raise ValueError(f"{path}: the header claims {'x'.join(map(str, img.shape))} voxels "
                         f"({needed / 2 ** 30:.0f} GB to read), more than this machine's "
                         "memory: the header is damaged or this is not one MRI volume.")
    affine = np.asarray(img.affine, np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ValueError(f"{path}: its affine (voxel-to-world matrix) is "
                         f"{'not finite' if not np.all(np.isfinite(affine)) else 'singular'}, "
                         "so the voxels have no orientation; fix the header's sform/qform "
                         "(e.g. re-export the image from the scanner's DICOM).")
    pixdim = tuple(float(z) for z in img.header.get_zooms()[:3])
    zooms = affine_zooms(affine)
    if len(pixdim) == 3 and not np.allclose(pixdim, zooms, rtol=1e-3, atol=1e-4):
        _warn_once("%s: pixdim says %s mm voxels but the affine %s mm; using the affine's "
                   "(as nibabel and ITK do) for volumes and distances.", path,
                   _mm(pixdim), _mm(zooms))
    _check_forms(path, img)


_WARNED: set[tuple] = set()


def _warn_once(message, *args):
    """A header warning, said once per file and message in a process (a file's header is read
    more than once: the inputs are checked before the model loads, then read)."""
    if (message, args) not in _WARNED:
        _WARNED.add((message, args))
        log.warning(message, *args)


def _mm(zooms):
    return "x".join(f"{z:g}" for z in zooms)


def _check_forms(path, img):
    qform, qcode = img.header.get_qform(coded=True)
    sform, scode = img.header.get_sform(coded=True)
    if qform is not None and sform is not None and int(qcode) > 0 and int(scode) > 0 \
            and not np.allclose(qform, sform, atol=AFFINE_TOLERANCE):
        _warn_once("%s: its qform and sform disagree; using the sform (code %d), as nibabel "
                   "does.", path, int(scode))


def _read(path):
    path, img = _open(path)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable NIfTI file ({err or type(err).__name__}: "
                         "truncated or damaged voxel data).") from None
    return path, img, data


def load_nifti(path: str | os.PathLike, kind: str = "image") -> tuple[np.ndarray, Geometry]:
    """A NIfTI volume reoriented to RAS, with what it takes to write results back.

    Args:
        path: a .nii or .nii.gz file.
        kind: "image" (float32, refused with NaN/Inf or all zeros) or "label" (integers as
            stored).

    Returns:
        (array in RAS, its Geometry).

    Raises:
        ValueError: naming the file and what is wrong with it.
    """
    if kind not in ("image", "label"):
        raise ValueError(f"kind must be 'image' or 'label', got {kind!r}.")
    path, img, data = _read(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    check_volume_shape(path, data.shape)
    if kind == "image":
        if data.dtype.itemsize > 4 and data.size:
            peak = float(np.nanmax(np.abs(data)))
            if peak > float(np.finfo(np.float32).max):
                raise ValueError(f"{path}: voxel values reach {peak:.3g} (after the header's "
                                 "scl_slope), beyond what float32 holds; rescale the image.")
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
                    img.header.copy(), to_ras=to_ras)


def check_volume_shape(path: str | os.PathLike, shape: tuple) -> None:
    """Refuses a shape that is not one 3-D volume.

    Args:
        path: the file (for the message).
        shape: its data's shape (a trailing axis of 1 already dropped).

    Raises:
        ValueError: when the shape is not 3-D.
    """
    if len(shape) != 3:
        raise ValueError(f"{path}: expected a 3-D volume, got shape {tuple(shape)}. Split 4-D "
                         "series into one file per modality.")


def check_inputs_from_headers(paths: dict) -> list[Geometry]:
    """Checks input files from their headers alone (no voxel data read): what loading them
    would refuse, said before any long work.

    Args:
        paths: {name (e.g. a modality): path}.

    Returns:
        Their Geometries, in that order.

    Raises:
        ValueError: naming the input and its file.
    """
    geometries = []
    for name, path in paths.items():
        try:
            path, img = _open(path)
            shape = img.shape[:3] if len(img.shape) == 4 and img.shape[3] == 1 else img.shape
            check_volume_shape(path, shape)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        geometries.append(_geometry(path, img, img.shape))
    return geometries


def read_geometry(path: str | os.PathLike) -> Geometry:
    """The Geometry of a NIfTI file, from its header only (no voxel data read).

    Args:
        path: the file.

    Returns:
        Its Geometry.
    """
    path, img = _open(path)
    return _geometry(path, img, img.shape)


def _atomic_save(img, path):
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def write_nifti(path: str | os.PathLike, array: np.ndarray, affine: np.ndarray,
                kind: str = "image") -> pathlib.Path:
    """Writes a new file (no input geometry to follow), whole or not at all.

    Args:
        path: the file.
        array: the volume.
        affine: its voxel-to-world matrix (written as qform and sform).
        kind: "image" (float32) or "label" (uint8).

    Returns:
        The path.
    """
    array = np.asarray(array)
    data = array.astype(np.uint8 if kind == "label" else np.float32)
    img = nib.Nifti1Image(data, np.asarray(affine, np.float64))
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    _atomic_save(img, path)
    return pathlib.Path(path)


def save_nifti(path: str | os.PathLike, array_ras: np.ndarray, geometry: Geometry,
               kind: str = "image") -> pathlib.Path:
    """Writes a RAS array back in an input's orientation, affine and header, whole or not at
    all.

    Args:
        path: the file.
        array_ras: the volume in RAS (extra trailing axes kept).
        geometry: the input's (`load_nifti`).
        kind: "image" (float32) or "label" (uint8, or int16 beyond 0..255).

    Returns:
        The path.

    Raises:
        ValueError: when the array does not fit the grid.
    """
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


WRITE_THREADS = 2      # gzip and the array copies release the GIL: two files at a time


def save_niftis(jobs: list, threads: int = WRITE_THREADS) -> list[pathlib.Path]:
    """`save_nifti` for several files at a time.

    On a 2-core CPU the seven outputs of a BraTS-size predict take 2.3 s this way against
    4.8 s one after the other (`python -m tools.benchmarks.speed predict`). Every write ends
    before the first error, if any, is raised; each file is written atomically (`save_nifti`).

    Args:
        jobs: (path, array, geometry, kind) tuples.
        threads: files written at a time.

    Returns:
        The paths, in the jobs' order.
    """
    jobs = list(jobs)
    if threads <= 1 or len(jobs) < 2:
        return [save_nifti(*job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(min(threads, len(jobs))) as pool:
        futures = [pool.submit(save_nifti, *job) for job in jobs]
        concurrent.futures.wait(futures)
    return [f.result() for f in futures]
