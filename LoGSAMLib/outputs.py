"""Outputs: label maps and Slicer segmentations in the input's geometry, the JSON report, lesion stats.

Label values (uint8, 0 = background): glioma 1, meningioma 2, pituitary adenoma 3.

Colors (RGB in 0..1, chosen to stay distinct from each other and from grey anatomy):
glioma red (0.90, 0.25, 0.20), meningioma blue (0.20, 0.50, 0.95), pituitary gold (0.95, 0.78, 0.15).

Terminology (Slicer ``.seg.nrrd``): category SNOMED CT 49755003 "Morphologically Altered
Structure" (as in Slicer's DICOM master list); types are the SNOMED CT concepts for the three
tumours (glioma 393564001, meningioma 393566004, pituitary adenoma 254956000) with the anatomic
region brain 12738006, meninges 1231004 or pituitary 56329008. The types are not in Slicer's
built-in lists, so :func:`terminology_context` gives a Slicer terminology file that declares them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, write_text_atomic
from .errors import InputError
from .types import Segmentation, Volume

CLASS_LABELS: dict[str, int] = {"glioma": 1, "meningioma": 2, "pituitary": 3}

CATEGORY = ("SCT", "49755003", "Morphologically Altered Structure")
TERMINOLOGY_CONTEXT = "Segmentation category and type - LoGSAM brain tumors"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


@dataclasses.dataclass(frozen=True)
class ClassInfo:
    name: str  # display name
    color: tuple[float, float, float]  # RGB, 0..1
    type_code: tuple[str, str, str]  # (scheme, code, meaning)
    region_code: tuple[str, str, str]

    def terminology(self) -> dict[str, Any]:
        """The terminology entry in slicerio's dict form."""
        return {
            "contextName": TERMINOLOGY_CONTEXT,
            "category": list(CATEGORY),
            "type": list(self.type_code),
            "anatomicContextName": ANATOMIC_CONTEXT,
            "anatomicRegion": list(self.region_code),
        }


CLASS_INFO: dict[str, ClassInfo] = {
    "glioma": ClassInfo("Glioma", (0.90, 0.25, 0.20), ("SCT", "393564001", "Glioma"),
                        ("SCT", "12738006", "Brain")),
    "meningioma": ClassInfo("Meningioma", (0.20, 0.50, 0.95), ("SCT", "393566004", "Meningioma"),
                            ("SCT", "1231004", "Meninges")),
    "pituitary": ClassInfo("Pituitary adenoma", (0.95, 0.78, 0.15), ("SCT", "254956000", "Pituitary adenoma"),
                           ("SCT", "56329008", "Pituitary")),
}
# For a label value outside the three classes: a generic neoplasm, as in Slicer's master list.
_GENERIC_TYPE = ("SCT", "108369006", "Neoplasm")
_GENERIC_COLORS = [(0.55, 0.80, 0.35), (0.80, 0.45, 0.85), (0.30, 0.80, 0.80), (0.95, 0.55, 0.25)]

LABELMAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
DICOM_SEG_SUFFIX = ".dcm"  # a DICOM SEG referencing the source series (dicom_seg.py)
SEGMENTATION_SUFFIXES = (".seg.nrrd", *LABELMAP_SUFFIXES, DICOM_SEG_SUFFIX)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SEGMENTATION_SUFFIXES:  # .seg.nrrd first: it also ends with .nrrd
        if name.endswith(suffix):
            return suffix
    raise InputError(f"Cannot write {path.name}: use one of {', '.join(SEGMENTATION_SUFFIXES)}.")


def _uint8_labels(labelmap: Volume) -> np.ndarray:
    array = np.asarray(labelmap.array)
    if array.dtype == np.uint8:
        return array
    if array.size and (array.min() < 0 or array.max() > 255 or not np.array_equal(array, np.round(array))):
        raise ValueError("label map values must be integers in 0..255")
    return array.astype(np.uint8)


def write_segmentation(seg: Segmentation, path: str | os.PathLike, models: dict[str, Any] | None = None) -> Path:
    """Write a segmentation atomically in exactly its label map's geometry; format by extension.

    ``.nii.gz`` / ``.nii`` / ``.nrrd`` / ``.mha``: a uint8 label map (values as in
    :data:`CLASS_LABELS`). ``.seg.nrrd``: a Slicer segmentation (via slicerio) with one segment
    per class, its name, color, terminology and label value. ``.dcm``: a DICOM SEG of the DICOM
    series the image was read from (``models``, the report's entry, names the models in it).
    A failure leaves no file.
    """
    target = Path(path)
    suffix = _suffix(target)
    labels = _uint8_labels(seg.labelmap)
    if suffix == DICOM_SEG_SUFFIX:
        from .dicom_seg import write_dicom_seg

        write_dicom_seg(seg, seg.labelmap.source_files, target, models=models)
    elif suffix == ".seg.nrrd":
        _write_seg_nrrd(seg, labels, target)
    else:
        from .volume import write_volume

        write_volume(seg.labelmap.with_array(labels), target)
    return target


def _segment_entries(seg: Segmentation, labels: np.ndarray) -> list[dict[str, Any]]:
    classes = {int(v): name for v, name in seg.classes.items()}
    for value in np.unique(labels):
        if value != 0 and int(value) not in classes:
            classes[int(value)] = f"label {int(value)}"  # keep unnamed voxels rather than drop them
    segments = []
    for n, value in enumerate(sorted(classes)):
        name = classes[value]
        info = CLASS_INFO.get(name)
        if info is not None:
            display, color, terminology = info.name, info.color, info.terminology()
        else:
            display, color = name, _GENERIC_COLORS[n % len(_GENERIC_COLORS)]
            terminology = {"contextName": TERMINOLOGY_CONTEXT, "category": list(CATEGORY),
                           "type": list(_GENERIC_TYPE)}
        indices = np.nonzero(labels == value)
        # slicerio extents are (i0, i1, j0, j1, k0, k1); our arrays are [k, j, i].
        extent = [0, -1, 0, -1, 0, -1]
        if indices[0].size:
            k, j, i = indices
            extent = [int(i.min()), int(i.max()), int(j.min()), int(j.max()), int(k.min()), int(k.max())]
        segments.append({
            "id": f"Segment_{value}",
            "name": display,
            "labelValue": int(value),
            "layer": 0,
            "color": [float(c) for c in color],
            "terminology": terminology,
            "extent": extent,
            "tags": {"LoGSAM.Class": name},
        })
    return segments


def _write_seg_nrrd(seg: Segmentation, labels: np.ndarray, target: Path) -> None:
    import slicerio

    segmentation = {
        "voxels": np.ascontiguousarray(labels.transpose(2, 1, 0)),  # slicerio wants [i, j, k]
        "ijkToLPS": seg.labelmap.ijk_to_lps_matrix(),
        "containedRepresentationNames": ["Binary labelmap"],
        "masterRepresentation": "Binary labelmap",
        "segments": _segment_entries(seg, labels),
    }
    with atomic_path(target, suffix=".seg.nrrd") as tmp:
        slicerio.write_segmentation(str(tmp), segmentation)


def terminology_context() -> dict[str, Any]:
    """A Slicer terminology context (segment-context JSON) declaring the three tumour types.

    Load it in Slicer (``slicer.modules.terminologies.logic().LoadTerminologyFromFile``) so the
    terminology selector lists the types the ``.seg.nrrd`` files use.
    """
    types = []
    for value_name, info in CLASS_INFO.items():
        scheme, code, meaning = info.type_code
        types.append({
            "CodingSchemeDesignator": scheme, "CodeValue": code, "CodeMeaning": meaning,
            "recommendedDisplayRGBValue": [round(255 * c) for c in info.color],
            "3dSlicerLabel": value_name,
            "3dSlicerIntegerLabel": CLASS_LABELS[value_name],
        })
    scheme, code, meaning = CATEGORY
    return {
        "SegmentationCategoryTypeContextName": TERMINOLOGY_CONTEXT,
        "@schema": "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/segment-context-schema.json#",
        "SegmentationCodes": {"Category": [{
            "CodingSchemeDesignator": scheme, "CodeValue": code, "CodeMeaning": meaning,
            "showAnatomy": True, "Type": types,
        }]},
    }


# ------------------------------------------------------------------------------------ report


def _jsonable(value: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, paths, dataclasses, sets; NaN/Inf -> None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return _jsonable(to_dict() if callable(to_dict) else dataclasses.asdict(value))
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to the JSON report")


def write_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the report as indented JSON, atomically; numpy values become plain numbers."""
    text = json.dumps(_jsonable(report), indent=2, allow_nan=False)
    write_text_atomic(path, text + "\n")
    return Path(path)


# ------------------------------------------------------------------------------- statistics


def lesion_stats(seg: Segmentation, axis: int = 0) -> dict[str, dict[str, Any]]:
    """Per class: ``volume_ml``, ``voxels``, ``slices`` [first, last] along array ``axis``
    (``None`` when empty), ``extent_mm`` [x, y, z] (the size of the LPS-aligned box around the
    voxels, voxel size included) and ``components`` (26-connected pieces)."""
    from scipy import ndimage

    labelmap = seg.labelmap
    matrix = labelmap.ijk_to_lps_matrix()[:3, :3]  # columns: the i, j, k voxel steps in mm
    voxel_ml = abs(float(np.linalg.det(matrix))) / 1000.0
    half_voxel = 0.5 * np.abs(matrix).sum(axis=1)  # half a voxel's LPS extent along x, y, z
    stats: dict[str, dict[str, Any]] = {}
    for value, name in sorted(seg.classes.items()):
        mask = np.asarray(labelmap.array) == value
        count = int(mask.sum())
        entry: dict[str, Any] = {"label": int(value), "voxels": count, "volume_ml": count * voxel_ml,
                                 "slices": None, "extent_mm": [0.0, 0.0, 0.0], "components": 0}
        if count:
            other = tuple(a for a in range(3) if a != axis)
            present = np.flatnonzero(mask.any(axis=other))
            entry["slices"] = [int(present[0]), int(present[-1])]
            kji = np.array(np.nonzero(mask), dtype=np.float64)
            lps = matrix @ kji[::-1]
            size = lps.max(axis=1) - lps.min(axis=1) + 2 * half_voxel
            entry["extent_mm"] = [float(s) for s in size]
            entry["components"] = int(ndimage.label(mask, structure=np.ones((3, 3, 3)))[1])
        stats[name] = entry
    return stats
