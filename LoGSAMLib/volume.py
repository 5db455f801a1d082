"""Volume I/O and geometry: reading, writing, planes, slices, sides and the intensity window.

Conventions (see also :mod:`LoGSAMLib.types`):

- Arrays are indexed ``[k, j, i]``; geometry is LPS; ``direction`` columns are the i, j, k axes.
- **Slices.** ``get_slice(array, axis, index)`` is ``np.take(array, index, axis)`` (returned as a
  view): its rows are the remaining *slower* array axis and its columns the remaining *faster*
  one. A 2D box ``(x0, y0, x1, y1)`` has x along columns and y along rows, in pixel-corner
  coordinates: pixel ``(row r, column c)`` covers ``[c, c + 1) x [r, r + 1)``, so its centre is
  ``(c + 0.5, r + 0.5)`` and maps onto the voxel centre of index ``c`` / ``r``.
- **Sides** are the patient's: LPS ``+x`` is the patient's left. They come from the direction
  cosines and a midline estimate, never from array indices.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path
from .errors import InputError
from .types import Box, Volume

PLANES = ("axial", "coronal", "sagittal")
# The world (LPS) normal of each anatomical plane.
_PLANE_NORMALS = {
    "axial": np.array([0.0, 0.0, 1.0]),
    "coronal": np.array([0.0, 1.0, 0.0]),
    "sagittal": np.array([1.0, 0.0, 0.0]),
}
VOLUME_WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
_LABELMAP_MAX_VALUES = 8  # an integer image with this few distinct values is a segmentation

# ---------------------------------------------------------------------------------- reading


def read_volume(path: str | os.PathLike, component: int | None = None, series_uid: str | None = None) -> Volume:
    """Read an image as a :class:`Volume` in its own geometry; the file is never modified.

    ``path`` is a NIfTI / NRRD / MHA file, a DICOM file or a DICOM series folder, or a 2D
    PNG/JPEG/BMP/TIFF (read as a one-slice volume; RGB becomes Rec. 601 luminance).

    ``component`` picks one volume of a 4D image, or one component of a multi-component
    (vector) image; without it such images are refused. A folder holding several DICOM
    series is refused unless ``series_uid`` names one (the error lists them).

    Raises :class:`InputError` for a missing or unreadable file, 4D/multi-component data without
    ``component``, an empty or constant image, NaN/Inf values, and integer images with at most
    8 distinct values (a label map given as the image).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"No such file or folder: {p}")
    with _itk_warnings_off():
        if p.is_dir():
            image = _read_dicom_series(p, series_uid)
        else:
            image = _read_file(p, series_uid)
    _check_spacing(image.GetSpacing(), p.name)
    volume = _image_to_volume(image, component, source=p.name)
    _check_content(volume.array, p.name)
    if p.is_dir() or _is_dicom(p):
        _keep_dicom_source(volume, p, series_uid)
    return volume


def input_files(path: str | os.PathLike) -> list[Path]:
    """Every file that reading ``path`` may use: the file itself, its NIfTI/Analyze or MetaImage data
    file, and for DICOM every file of the folder (the series' members). Outputs must be none of these."""
    p = Path(path)
    if p.is_dir():
        return [p, *sorted(c for c in p.iterdir() if c.is_file())]
    files = [p]
    if p.is_file() and _is_dicom(p):
        files += sorted(c for c in p.parent.iterdir() if c.is_file() and c != p)
    for data_suffix in (".img", ".img.gz", ".raw", ".zraw"):
        sibling = p.with_name(p.name.split(".")[0] + data_suffix)
        if sibling != p and sibling.exists():
            files.append(sibling)
    return files


@contextlib.contextmanager
def _itk_warnings_off() -> Iterator[None]:
    """ITK prints multi-line WARNINGs to stderr for odd headers; our checks say it in one line."""
    before = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(before)


def _check_spacing(spacing: Sequence[float], source: str) -> None:
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        shown = ", ".join(f"{s:g}" for s in spacing)
        raise InputError(f"{source} has voxel spacing ({shown}) mm in its header; spacing must be positive "
                         "(a flip belongs in the direction matrix): fix the header and try again.")


def _read_file(path: Path, series_uid: str | None) -> sitk.Image:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(
            f"Cannot read {path.name}: not a supported image (NIfTI, NRRD, MHA, DICOM, PNG or JPEG)."
        ) from None
    if _is_dicom(path):
        # One DICOM file stands for its series: read every slice of that series.
        return _read_dicom_series(path.parent, series_uid, member=path)
    _check_spacing(reader.GetSpacing(), path.name)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti(path)
    try:
        return reader.Execute()
    except RuntimeError:
        raise InputError(f"Cannot read {path.name}: the file is damaged or truncated.") from None


# NIfTI datatype code -> numpy dtype of the floating types (the ones that can hold NaN/Inf).
_NIFTI_FLOATS = {16: "f4", 64: "f8", 1536: "f16", 32: "c8", 1792: "c16"}


def _check_nifti(path: Path) -> None:
    """Read a NIfTI-1/2 file's header and every data byte ourselves: ITK fills a truncated file with
    zeros and turns NaN/Inf into 0 silently; here both are refused, as is a zero pixdim."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    damaged = (f"Cannot read {path.name}: the file is truncated or damaged (its compressed data ends early); "
               "copy it again from the source.")
    try:
        with opener(path, "rb") as stream:
            header = stream.read(540)
            order, ndim, dims, datatype, bitpix, offset, pixdim = _nifti_header(header, path.name)
            _check_spacing(pixdim[:ndim], path.name)
            expected = math.prod(dims) * bitpix // 8
            if offset > len(header):
                stream.read(offset - len(header))
            got, bad = _scan_data(stream, header[offset:], expected, _NIFTI_FLOATS.get(datatype), order)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        raise InputError(damaged) from None
    except OSError as error:
        raise InputError(f"Cannot read {path.name}: {error.strerror or error}.") from None
    if got < expected:
        raise InputError(f"Cannot read {path.name}: the file is truncated ({got} of the {expected} data bytes "
                         "its header promises); copy it again from the source.")
    if bad:
        raise InputError(f"{path.name} holds {bad} NaN or infinite voxels; fix or mask them before segmenting.")


def _nifti_header(header: bytes, source: str) -> tuple[str, int, list[int], int, int, int, list[float]]:
    for order in ("<", ">"):
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            dim = struct.unpack(order + "8h", header[40:56])
            datatype, bitpix = struct.unpack(order + "2h", header[70:74])
            pixdim = struct.unpack(order + "8f", header[76:108])
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            datatype, bitpix = struct.unpack(order + "2h", header[12:16])
            dim = struct.unpack(order + "8q", header[16:80])
            pixdim = struct.unpack(order + "8d", header[104:168])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        raise InputError(f"Cannot read {source}: its NIfTI header is damaged.")
    ndim = int(dim[0])
    if not 1 <= ndim <= 7 or bitpix <= 0 or any(d < 1 for d in dim[1:ndim + 1]):
        raise InputError(f"Cannot read {source}: its NIfTI header is damaged (dimensions {dim[:ndim + 1]}).")
    return order, ndim, [int(d) for d in dim[1:ndim + 1]], int(datatype), int(bitpix), max(offset, 0), \
        [float(p) for p in pixdim[1:]]


def _scan_data(stream, start: bytes, expected: int, float_code: str | None, order: str) -> tuple[int, int]:
    """Read up to ``expected`` data bytes: ``(bytes read, non-finite values among them)``."""
    dtype = np.dtype(order + float_code) if float_code else None
    itemsize = dtype.itemsize if dtype is not None else 1
    got, bad, pending, eof = 0, 0, start[:expected], False
    while got < expected:
        need = expected - got - len(pending)
        if need > 0 and not eof:
            chunk = stream.read(min(need, 1 << 22))
            eof = not chunk
            pending += chunk
        usable = len(pending) - len(pending) % itemsize
        if usable == 0:
            if eof:
                break
            continue
        block, pending = pending[:usable], pending[usable:]
        if dtype is not None:
            values = np.frombuffer(block, dtype=dtype)
            bad += int(values.size - np.count_nonzero(np.isfinite(values)))
        got += usable
    return got + len(pending), bad


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        preamble = handle.read(132)
    return preamble[128:132] == b"DICM" or path.suffix.lower() == ".dcm"


def _read_dicom_series(folder: Path, series_uid: str | None, member: Path | None = None) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in _series_files(folder, series_uid, member)])
    try:
        return reader.Execute()
    except RuntimeError:
        raise InputError(f"Cannot read the DICOM series in {folder}: damaged or unsupported.") from None


def dicom_series_files(path: str | os.PathLike, series_uid: str | None = None) -> list[Path]:
    """The files of the DICOM series at ``path`` (a folder, or one file of the series) in the order
    :func:`read_volume` stacks them: slice ``k`` of its array is file ``k`` (one multi-frame file)."""
    p = Path(path)
    return _series_files(p, series_uid) if p.is_dir() else _series_files(p.parent, series_uid, member=p)


def _keep_dicom_source(volume: Volume, path: Path, series_uid: str | None) -> None:
    """Keep the source files with the volume (for DICOM SEG); a multi-frame image's spacing comes
    from its functional groups, which GDCM does not read."""
    from .dicom_seg import multiframe_spacing

    files = dicom_series_files(path, series_uid)
    volume.source_files = tuple(str(f) for f in files)
    spacing = multiframe_spacing(files[0]) if len(files) == 1 else None
    if spacing is not None:
        volume.spacing = spacing


def _series_files(folder: Path, series_uid: str | None, member: Path | None = None) -> list[Path]:
    ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if not ids:
        raise InputError(f"No DICOM series in {folder}; point to the folder that holds the .dcm files.")
    files = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in ids}
    if series_uid is None and member is not None:
        series_uid = next((uid for uid, names in files.items()
                           if any(Path(n).resolve() == member.resolve() for n in names)), None)
    if series_uid is None:
        if len(ids) > 1:
            raise InputError(f"{folder} holds {len(ids)} DICOM series: {_series_listing(files)}. Pick one with "
                             "--series UID (series_uid= in Python), or give the path of one file of that series.")
        series_uid = ids[0]
    if series_uid not in files:
        raise InputError(f"DICOM series {series_uid} is not in {folder}; it holds: {_series_listing(files)}.")
    return [Path(f) for f in files[series_uid]]


def _series_listing(files: dict[str, list[str]]) -> str:
    """``UID "description" (N slices); ...`` for a refusal message."""
    parts = []
    for uid, names in files.items():
        reader = sitk.ImageFileReader()
        reader.SetFileName(names[0])
        description = ""
        with contextlib.suppress(RuntimeError):
            reader.ReadImageInformation()
            if reader.HasMetaDataKey("0008|103e"):
                description = reader.GetMetaData("0008|103e").strip()
        shown = f' "{description}"' if description else " (no description)"
        parts.append(f"{uid}{shown} ({len(names)} slices)")
    return "; ".join(parts)


def _image_to_volume(image: sitk.Image, component: int | None, source: str) -> Volume:
    """Any 2D/3D/4D, scalar/vector SimpleITK image -> one scalar 3D Volume."""
    dim = image.GetDimension()
    n_components = image.GetNumberOfComponentsPerPixel()
    if dim == 4:
        n_volumes = image.GetSize()[3]
        if n_components > 1:
            raise InputError(f"{source} is a 4D image of vectors; convert it to one 3D scalar volume first.")
        if n_volumes > 1 and component is None:
            raise InputError(
                f"{source} is 4D with {n_volumes} volumes; pick one with component=i "
                f"(--volume-index i), i in 0..{n_volumes - 1}."
            )
        index = component or 0
        if not 0 <= index < n_volumes:
            raise InputError(f"Volume index {index} is out of range: {source} has {n_volumes} volumes.")
        size = list(image.GetSize())
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, index])
        component, dim = None, 3
    elif dim not in (2, 3):
        raise InputError(f"{source} has {dim} dimensions; only 2D, 3D and 4D images are supported.")

    rgb_2d = dim == 2 and n_components in (3, 4) and component is None
    if rgb_2d:
        # A colour photo of a slice (e.g. a BRISC JPEG): Rec. 601 luminance, alpha ignored.
        rgb = sitk.GetArrayFromImage(image)[..., :3].astype(np.float32)
        array = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    else:
        if n_components > 1:
            if component is None and not (dim == 2 and n_components == 2):
                raise InputError(
                    f"{source} has {n_components} components per voxel; pick one with component=i "
                    f"(--volume-index i), i in 0..{n_components - 1}."
                )
            index = component or 0  # grey + alpha: the grey channel
            if not 0 <= index < n_components:
                raise InputError(f"Component {index} is out of range: {source} has {n_components}.")
            image = sitk.VectorIndexSelectionCast(image, index)
        elif component not in (None, 0):
            raise InputError(f"{source} holds a single volume; component={component} does not exist.")
        array = sitk.GetArrayFromImage(image)

    spacing, origin = image.GetSpacing(), image.GetOrigin()
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    if dim == 2:
        array = array[np.newaxis]
        spacing, origin = (*spacing, 1.0), (*origin, 0.0)
        direction = np.block([[direction, np.zeros((2, 1))], [np.zeros((1, 2)), np.ones((1, 1))]])
    return Volume(np.ascontiguousarray(array), spacing, origin, direction)


def _check_content(array: np.ndarray, source: str) -> None:
    if array.size == 0:
        raise InputError(f"{source} is empty (it has no voxels).")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InputError(f"{source} holds {bad} NaN or infinite voxels; fix or mask them before segmenting.")
    low, high = array.min(), array.max()
    if low == high:
        raise InputError(f"{source} is constant (every voxel is {low}); it holds no image.")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        values = _few_distinct_values(array)
        if values is not None:
            shown = ", ".join(str(v) for v in values)
            raise InputError(
                f"{source} looks like a label map ({len(values)} distinct values: {shown}), not an MRI; "
                "give the image itself."
            )


def _few_distinct_values(array: np.ndarray) -> list[int] | None:
    """The distinct values when there are at most 8 of them, else None (cheaply)."""
    sample = array.reshape(-1)[:: max(1, array.size // 200_000)]
    if np.unique(sample).size > _LABELMAP_MAX_VALUES:
        return None
    values = np.unique(array)
    return values.tolist() if values.size <= _LABELMAP_MAX_VALUES else None


# ---------------------------------------------------------------------------------- writing


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the volume's pixels and exact geometry (bool becomes uint8)."""
    array = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(volume.direction).reshape(-1)))
    return image


def from_sitk(image: sitk.Image, component: int | None = None) -> Volume:
    """A :class:`Volume` from a 2D or 3D SimpleITK image (no content checks, unlike read_volume)."""
    return _image_to_volume(image, component, source="image")


def write_volume(volume: Volume, path: str | os.PathLike, atomic: bool = True) -> Path:
    """Write atomically (unless ``atomic=False``: the caller's transaction is); format by extension
    (.nii.gz, .nii, .nrrd, .mha)."""
    target = Path(path)
    suffix = _write_suffix(target)
    if not atomic:
        sitk.WriteImage(to_sitk(volume), str(target), useCompression=suffix != ".nii")
        return target
    with atomic_path(target, suffix=suffix) as tmp:
        sitk.WriteImage(to_sitk(volume), str(tmp), useCompression=suffix != ".nii")
    return target


def _write_suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".seg.nrrd"):
        raise InputError(f"{path.name}: a .seg.nrrd is a segmentation; write it with outputs.write_segmentation.")
    for suffix in VOLUME_WRITE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(f"Cannot write {path.name}: use one of {', '.join(VOLUME_WRITE_SUFFIXES)}.")


# ------------------------------------------------------------------------- planes and slices


def slicing_axis(volume: Volume, plane: str = "axial") -> int:
    """The array axis (0 = k, 1 = j, 2 = i) whose direction is closest to the plane's normal.

    Axial slices are cut across S, coronal across A/P, sagittal across L/R; no resampling, so
    each slice is an acquired image. A one-slice volume (a 2D image) is always cut along its
    single-slice axis, whatever the plane. Ties go to the slower axis (k before j before i).
    """
    if plane not in _PLANE_NORMALS:
        raise InputError(f"Unknown plane {plane!r}; use one of {', '.join(PLANES)}.")
    flat = [a for a in range(3) if volume.array.shape[a] == 1]
    if len(flat) == 1:
        return flat[0]
    normal = _PLANE_NORMALS[plane]
    # Column c of direction is ijk axis c, i.e. array axis 2 - c.
    scores = [abs(float(volume.direction[:, 2 - axis] @ normal)) for axis in range(3)]
    return int(np.argmax(np.round(scores, 9)))


def in_plane_axes(axis: int) -> tuple[int, int]:
    """(rows, columns) array axes of a slice cut along ``axis``: slower, then faster."""
    rows, cols = (a for a in range(3) if a != axis)
    return rows, cols


def _slice_index(axis: int, index: int) -> tuple[slice | int, ...]:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, not {axis}")
    return (slice(None),) * axis + (index,)


def get_slice(array: np.ndarray, axis: int, index: int) -> np.ndarray:
    """``np.take(array, index, axis)`` as a view (copy before modifying it)."""
    return array[_slice_index(axis, index)]


def put_slice(array: np.ndarray, axis: int, index: int, values: np.ndarray) -> None:
    """Write a 2D slice (same convention as :func:`get_slice`) into ``array`` in place."""
    target = array[_slice_index(axis, index)]
    if np.shape(values) != target.shape:
        raise ValueError(f"slice shape {np.shape(values)} != {target.shape}")
    target[...] = values


def slice_point_to_ijk(axis: int, index: float, x: float, y: float) -> np.ndarray:
    """Continuous voxel index (i, j, k) of slice point (x, y) in pixel-corner coordinates."""
    kji = np.zeros(3)
    rows, cols = in_plane_axes(axis)
    kji[axis], kji[rows], kji[cols] = index, y - 0.5, x - 0.5
    return kji[::-1].copy()


def slice_point_to_lps(volume: Volume, axis: int, index: float, x: float, y: float) -> np.ndarray:
    """The LPS point (mm) of slice point (x, y); pixel (r, c) has its centre at (c + .5, r + .5)."""
    ijk = slice_point_to_ijk(axis, index, x, y)
    return volume.ijk_to_lps_matrix()[:3] @ np.append(ijk, 1.0)


def _box_centre(box: Box | Sequence[float]) -> tuple[float, float]:
    x0, y0, x1, y1 = box.as_array() if isinstance(box, Box) else np.asarray(box, dtype=float)[:4]
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0


# -------------------------------------------------------------------------- sides and midline


def foreground_threshold(array: np.ndarray) -> float:
    """Otsu's threshold between background and tissue (on a subsample, outliers clipped)."""
    sample = _subsample(array).astype(np.float64)
    low, high = float(sample.min()), float(np.percentile(sample, 99.9))
    if high <= low:
        return low
    counts, edges = np.histogram(np.clip(sample, low, high), bins=256, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight0 = np.cumsum(counts)
    weight1 = weight0[-1] - weight0
    mass0 = np.cumsum(counts * centres)
    mean0 = mass0 / np.maximum(weight0, 1)
    mean1 = (mass0[-1] - mass0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _subsample(array: np.ndarray, target: int = 2_000_000) -> np.ndarray:
    """A strided view with about ``target`` voxels (deterministic, keeps the 3D layout)."""
    if array.size <= target:
        return array
    step = int(np.ceil((array.size / target) ** (1.0 / 3.0)))
    return array[::step, ::step, ::step]


def midline_lps_x(volume: Volume) -> float:
    """The LPS x (mm) of the patient's midline: the middle of the head's left-right extent.

    The head is the Otsu foreground; its extent is the 1st to 99th percentile of the LPS x of
    its voxels, so a lesion on one side or a few bright outliers do not shift it. With no
    foreground it falls back to x = 0 (the scanner's isocentre).
    """
    step = 1
    while volume.array[::step, ::step, ::step].size > 1_000_000:
        step += 1
    sub = volume.array[::step, ::step, ::step]
    k, j, i = np.nonzero(sub > foreground_threshold(volume.array))
    if i.size == 0:
        return 0.0
    matrix = volume.ijk_to_lps_matrix()
    x = matrix[0, 0] * (i * step) + matrix[0, 1] * (j * step) + matrix[0, 2] * (k * step) + matrix[0, 3]
    low, high = np.percentile(x, [1, 99])
    return float((low + high) / 2.0)


def patient_side(
    volume: Volume,
    axis: int,
    index: float,
    box: Box | Sequence[float],
    midline_x: float | None = None,
    tolerance_mm: float = 5.0,
) -> str:
    """``"left"``, ``"right"`` or ``"midline"``: the patient's side of a box centre.

    The centre goes to LPS through the direction cosines (+x is the patient's left) and is
    compared with the midline (:func:`midline_lps_x` unless given); within ``tolerance_mm``
    of it the answer is ``"midline"``.
    """
    if midline_x is None:
        midline_x = midline_lps_x(volume)
    x, y = _box_centre(box)
    offset = float(slice_point_to_lps(volume, axis, index, x, y)[0]) - midline_x
    if abs(offset) <= tolerance_mm:
        return "midline"
    return "left" if offset > 0 else "right"


# --------------------------------------------------------------------------- intensity window


def intensity_window(volume: Volume, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """One robust display window ``(lo, hi)`` for the whole volume.

    - ``hi`` is the ``high`` percentile of the *foreground* (voxels above Otsu's threshold), so
      a large dark background does not pull it down into the tissue range and a few bright
      outliers (spikes, vessels) above it are clipped;
    - ``lo`` is the ``low`` percentile of all voxels above the image minimum (MedSAM's ``> 0``
      rule for MR, generalised), so dark tissue such as CSF stays above black.
    Every slice of the volume is mapped with this same window (see :func:`to_uint8`).
    """
    array = volume.array
    sample = _subsample(array)
    threshold = foreground_threshold(array)
    foreground = sample[sample > threshold]
    above_min = sample[sample > sample.min()]
    if foreground.size == 0 or above_min.size == 0:
        return float(sample.min()), float(sample.max())
    lo = float(np.percentile(above_min, low))
    hi = float(np.percentile(foreground, high))
    if hi <= lo:
        hi = float(sample.max())
    return lo, hi


def to_uint8(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Clip to ``window`` and scale linearly: ``lo`` -> 0, ``hi`` -> 255 (rounded)."""
    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f"empty intensity window {window}")
    scaled = (np.asarray(array, dtype=np.float32) - lo) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------- RAS boxes


def _ras_box_ijk_bounds(volume: Volume, ras1: Sequence[float], ras2: Sequence[float]) -> np.ndarray:
    """Continuous (i, j, k) of the 8 corners of an axis-aligned RAS box, as a (8, 3) array."""
    a, b = np.asarray(ras1, dtype=float), np.asarray(ras2, dtype=float)
    if a.shape != (3,) or b.shape != (3,) or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("A RAS box needs two finite corners of three numbers each (R A S, in mm).")
    corners_ras = np.array([[(a, b)[u][0], (a, b)[v][1], (a, b)[w][2]]
                            for u in (0, 1) for v in (0, 1) for w in (0, 1)])
    corners_lps = corners_ras * np.array([-1.0, -1.0, 1.0])
    matrix = volume.ijk_to_lps_matrix()
    return (np.linalg.inv(matrix[:3, :3]) @ (corners_lps - matrix[:3, 3]).T).T


def box_ras_to_ijk(
    volume: Volume, ras_corner_1: Sequence[float], ras_corner_2: Sequence[float]
) -> tuple[int, int, int, int, int, int]:
    """Voxel index ranges ``(i0, i1, j0, j1, k0, k1)``, **inclusive**, that an RAS box covers.

    The box is axis-aligned in RAS (as a Slicer ROI gives it, two opposite corners in mm). All 8
    corners go to continuous voxel indices; a voxel is covered when its centre lies within their
    bounds (on an axis where the box is thinner than a voxel, the voxel nearest its middle).
    The ranges are clipped to the image; a box that misses the image raises InputError.
    """
    ijk = _ras_box_ijk_bounds(volume, ras_corner_1, ras_corner_2)
    lows, highs = ijk.min(axis=0), ijk.max(axis=0)
    ranges: list[int] = []
    for axis, size in enumerate(volume.shape_ijk):
        first, last = int(np.ceil(lows[axis] - 1e-6)), int(np.floor(highs[axis] + 1e-6))
        if first > last:
            first = last = int(np.floor((lows[axis] + highs[axis]) / 2.0 + 0.5))
        if last < 0 or first > size - 1:
            bounds = _image_ras_bounds(volume)
            raise InputError(
                f"The box R A S {list(map(float, ras_corner_1))} .. {list(map(float, ras_corner_2))} does not "
                f"overlap the image (its RAS bounds are {bounds[0]} .. {bounds[1]})."
            )
        ranges += [max(first, 0), min(last, size - 1)]
    return tuple(ranges)  # type: ignore[return-value]


def _image_ras_bounds(volume: Volume) -> tuple[list[float], list[float]]:
    size = np.array(volume.shape_ijk) - 1
    corners = np.array([[u, v, w, 1.0] for u in (0, size[0]) for v in (0, size[1]) for w in (0, size[2])])
    ras = (volume.ijk_to_ras_matrix() @ corners.T).T[:, :3]
    return [round(float(v), 1) for v in ras.min(axis=0)], [round(float(v), 1) for v in ras.max(axis=0)]


def ijk_ranges_to_slice_boxes(
    ranges: Sequence[int], axis: int
) -> dict[int, tuple[float, float, float, float]]:
    """Per slice index along ``axis``, the 2D box (x0, y0, x1, y1) of inclusive ijk ranges."""
    i0, i1, j0, j1, k0, k1 = (int(v) for v in ranges)
    by_axis = {2: (i0, i1), 1: (j0, j1), 0: (k0, k1)}
    rows, cols = in_plane_axes(axis)
    (r0, r1), (c0, c1) = by_axis[rows], by_axis[cols]
    box = (float(c0), float(r0), float(c1 + 1), float(r1 + 1))
    s0, s1 = by_axis[axis]
    return {s: box for s in range(s0, s1 + 1)}


def ras_box_to_slice_boxes(
    volume: Volume, ras_corner_1: Sequence[float], ras_corner_2: Sequence[float], axis: int
) -> dict[int, tuple[float, float, float, float]]:
    """Per slice index along ``axis``, the tight 2D box of the voxels whose centre is in the RAS box.

    On an oblique volume the RAS box cuts each slice in a different place, so this is tighter
    than :func:`ijk_ranges_to_slice_boxes`; it falls back to that when the box is thinner than
    a voxel and holds no voxel centre.
    """
    ranges = box_ras_to_ijk(volume, ras_corner_1, ras_corner_2)
    a, b = np.asarray(ras_corner_1, dtype=float), np.asarray(ras_corner_2, dtype=float)
    low_ras, high_ras = np.minimum(a, b) - 1e-6, np.maximum(a, b) + 1e-6
    by_axis = {2: ranges[0:2], 1: ranges[2:4], 0: ranges[4:6]}
    rows, cols = in_plane_axes(axis)
    row_ids = np.arange(by_axis[rows][0], by_axis[rows][1] + 1)
    col_ids = np.arange(by_axis[cols][0], by_axis[cols][1] + 1)
    grid_r, grid_c = np.meshgrid(row_ids, col_ids, indexing="ij")
    ras_matrix = volume.ijk_to_ras_matrix()
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for s in range(by_axis[axis][0], by_axis[axis][1] + 1):
        kji = np.zeros((3, grid_r.size))
        kji[axis], kji[rows], kji[cols] = s, grid_r.ravel(), grid_c.ravel()
        ras = ras_matrix[:3, :3] @ kji[::-1] + ras_matrix[:3, 3:4]
        inside = np.all((ras >= low_ras[:, None]) & (ras <= high_ras[:, None]), axis=0)
        if inside.any():
            r, c = grid_r.ravel()[inside], grid_c.ravel()[inside]
            boxes[s] = (float(c.min()), float(r.min()), float(c.max() + 1), float(r.max() + 1))
    return boxes or ijk_ranges_to_slice_boxes(ranges, axis)
