"""DICOM Segmentation objects for PACS, written with highdicom.

A LoGSAM segmentation becomes one binary DICOM SEG with one segment per class: the class's
coded terminology (:data:`outputs.CLASS_INFO`: category SNOMED CT "Morphologically Altered
Structure", the tumour type, the anatomic region), its display colour, and the algorithm
identification "LoGSAM" with the version and the SHA-256 of each model file used. It references
the source series (patient, study, frame of reference and every source instance are copied from
it), and frame ``k`` of the label map is stored against the source image (or frame) at slice ``k``.

The label map must be in its source series' own geometry, as :func:`volume.read_volume` returns
it: the same rows, columns, orientation and pixel spacing, one slice per source image (or frame)
in spatial order. Missing slices are fine (each segment frame goes with its own source image);
a segmentation of another series is refused with a clear message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import InputError
from .types import Segmentation

SERIES_DESCRIPTION = "LoGSAM tumor segmentation"
_ORIENTATION_TOLERANCE = 1e-3  # direction cosines
_SPACING_TOLERANCE = 1e-3  # relative


def write_dicom_seg(
    segmentation: Segmentation,
    source: str | os.PathLike | Sequence[str | os.PathLike],
    path: str | os.PathLike,
    models: dict[str, Any] | None = None,
    series_description: str = SERIES_DESCRIPTION,
    series_number: int | None = None,
) -> Path:
    """Write ``segmentation`` as a binary DICOM SEG at ``path`` (atomically); returns ``path``.

    ``source``: the DICOM files the image was read from (``Volume.source_files``, any order), or
    a DICOM folder / one file of the series. ``models``: the report's ``"models"`` entry
    (``{role: {"id": ..., "files": {name: sha256}}}``), recorded as the algorithm's parameters.
    ``series_number`` defaults to the source's plus 1000. Raises :class:`InputError` when the
    source is not DICOM or does not match the label map.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    from .atomic import atomic_path

    datasets = _read_sources(source)
    order = _frames_in_slice_order(segmentation, datasets)
    labels = np.asarray(segmentation.labelmap.array)
    values = sorted(v for v in segmentation.classes if v != 0)
    if not values:
        raise InputError("The segmentation names no class; there is nothing to write as DICOM SEG.")
    # One binary plane per segment; frame f goes with source image f (or the stored frame f).
    planes = np.zeros((*labels.shape, len(values)), dtype=np.uint8)
    planes[order] = np.stack([labels == v for v in values], axis=-1)
    descriptions = [_segment_description(number, segmentation.classes[v], models)
                    for number, v in enumerate(values, start=1)]
    first = datasets[0]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=planes,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number if series_number is not None else int(first.get("SeriesNumber") or 0) + 1000,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="LoGSAM",
        manufacturer_model_name="LoGSAM",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description,
        content_label="LOGSAM",
        content_description="Brain tumor segmentation from a dictated report",
        omit_empty_frames=bool(planes.any()),  # highdicom needs at least one frame
    )
    target = Path(path)
    with atomic_path(target, suffix=".dcm") as tmp:
        seg.save_as(tmp)
    return target


def source_series_files(volume_or_path: Any) -> list[Path]:
    """The DICOM files behind an image: a Volume's ``source_files``, or those of a DICOM folder/file."""
    files = getattr(volume_or_path, "source_files", None)
    if files is not None:
        return [Path(f) for f in files]
    from .volume import dicom_series_files

    return dicom_series_files(volume_or_path)


def multiframe_spacing(path: str | os.PathLike) -> tuple[float, float, float] | None:
    """(i, j, k) spacing of a multi-frame DICOM image from its functional groups, or None for a
    single-frame one. GDCM (under SimpleITK) reads 1 mm for enhanced multi-frame images."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if int(ds.get("NumberOfFrames") or 1) < 2 or "PerFrameFunctionalGroupsSequence" not in ds:
        return None
    positions, orientation, spacing = _frame_positions(ds)
    normal = np.cross(orientation[:3], orientation[3:])
    step = float(np.abs(np.diff(positions @ normal)).mean())
    return float(spacing[1]), float(spacing[0]), step


def _read_sources(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Any]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"No such DICOM source: {path.name}.")
        if path.is_file() and not _looks_dicom(path):
            raise InputError(f"DICOM SEG needs the source DICOM series, and {path.name} is not DICOM; "
                             "read the image from its DICOM folder (or write .nii.gz / .seg.nrrd instead).")
        files = source_series_files(path)
    else:
        files = [Path(f) for f in source]
    if not files:
        raise InputError("DICOM SEG needs the source DICOM series, and this image was not read from DICOM; "
                         "give its DICOM folder as the input (or write .nii.gz / .seg.nrrd instead).")
    datasets = []
    for f in files:
        try:
            datasets.append(pydicom.dcmread(f, stop_before_pixels=True))
        except (InvalidDicomError, OSError) as error:
            raise InputError(f"Cannot read the source DICOM file {Path(f).name}: {error}") from None
    return datasets


def _looks_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def _frame_positions(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions (F, 3), orientation (6,), pixel spacing (row, column)) of an image's frames."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None

        def group(frame: Any, name: str) -> Any:
            for holder in (frame, shared):
                if holder is not None and name in holder:
                    return getattr(holder, name)[0]
            raise InputError(f"The multi-frame source lacks {name}; it cannot be placed in space.")

        frames = ds.PerFrameFunctionalGroupsSequence
        positions = np.array([group(f, "PlanePositionSequence").ImagePositionPatient for f in frames], float)
        orientation = np.array(group(frames[0], "PlaneOrientationSequence").ImageOrientationPatient, float)
        spacing = np.array(group(frames[0], "PixelMeasuresSequence").PixelSpacing, float)
        return positions, orientation, spacing
    try:
        return (np.array([ds.ImagePositionPatient], float), np.array(ds.ImageOrientationPatient, float),
                np.array(ds.PixelSpacing, float))
    except AttributeError:
        raise InputError("A source DICOM image has no position, orientation or pixel spacing; "
                         "DICOM SEG needs a series placed in patient space.") from None


def _frames_in_slice_order(segmentation: Segmentation, datasets: list[Any]) -> np.ndarray:
    """Which source image (or frame of the one multi-frame image) each label-map slice k is, after
    checking that they match."""
    labelmap = segmentation.labelmap
    slices, rows, columns = labelmap.array.shape
    direction = labelmap.direction
    normal = direction[:, 2]
    multiframe = len(datasets) == 1 and int(datasets[0].get("NumberOfFrames") or 1) > 1
    geometry = [_frame_positions(ds) for ds in datasets]
    count = len(geometry[0][0]) if multiframe else len(datasets)
    problems = []
    if count != slices:
        problems.append(f"{count} source {'frames' if multiframe else 'images'} for {slices} slices")
    for ds, (_, orientation, spacing) in zip(datasets, geometry, strict=True):
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            problems.append(f"images of {ds.Rows} x {ds.Columns} pixels for slices of {rows} x {columns}")
        elif np.abs(orientation - np.concatenate([direction[:, 0], direction[:, 1]])).max() > _ORIENTATION_TOLERANCE:
            problems.append("another orientation")
        elif not np.allclose(spacing, (labelmap.spacing[1], labelmap.spacing[0]), rtol=_SPACING_TOLERANCE):
            problems.append(f"pixel spacing {spacing[0]:g} x {spacing[1]:g} mm, not "
                            f"{labelmap.spacing[1]:g} x {labelmap.spacing[0]:g} mm")
        if problems:
            break
    if not problems:
        positions = np.concatenate([g[0] for g in geometry])
        # Slice k of the label map is the k-th image (or frame) along its slice axis.
        order = np.argsort((positions - np.asarray(labelmap.origin)) @ normal, kind="stable")
        offsets = (positions[order] - np.asarray(labelmap.origin)) @ direction
        if abs(offsets[0, 2]) > 0.5 * labelmap.spacing[2] or np.abs(offsets[:, :2]).max() > 0.5 * min(
                labelmap.spacing[:2]):
            problems.append("its images lie elsewhere in space")
    if problems:
        raise InputError(f"The segmentation does not match the given DICOM source ({problems[0]}); DICOM SEG "
                         "needs the series the image was read from.")
    return order


def _segment_description(number: int, name: str, models: dict[str, Any] | None) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    from .outputs import _GENERIC_TYPE, CATEGORY, CLASS_INFO

    info = CLASS_INFO.get(name)
    type_code = info.type_code if info else _GENERIC_TYPE
    algorithm = hd.AlgorithmIdentificationSequence(
        name="LoGSAM", family=codes.cid7162.ArtificialIntelligence, version=__version__,
        source="LoGSAM", parameters=_model_parameters(models) or None)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=info.name if info else name,
        segmented_property_category=Code(CATEGORY[1], CATEGORY[0], CATEGORY[2]),
        segmented_property_type=Code(type_code[1], type_code[0], type_code[2]),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_id=name,
        tracking_uid=hd.UID(),
        anatomic_regions=[Code(info.region_code[1], info.region_code[0], info.region_code[2])] if info else None,
        display_color=hd.color.CIELabColor.from_rgb(*(round(255 * c) for c in info.color)) if info else None,
    )


def _model_parameters(models: dict[str, Any] | None) -> dict[str, str]:
    """``{"segmenter": "litemedsam", "segmenter litemedsam.pth sha256": "..."}`` from the report's models."""
    out: dict[str, str] = {}
    for role, entry in (models or {}).items():
        out[role] = str(entry.get("id", ""))
        for file_name, digest in (entry.get("files") or {}).items():
            out[f"{role} {file_name} sha256"] = str(digest)
    return out
