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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import OutputTransaction, atomic_path, check_writable_folder, write_text_atomic
from .errors import InputError, OutputError
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
    """The writer suffix of a segmentation path (the longest that matches: .seg.nrrd before .nrrd)."""
    name = path.name.lower()
    for suffix in sorted(SEGMENTATION_WRITERS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise InputError(f"Cannot write {path.name}: use one of {', '.join(SEGMENTATION_WRITERS)}.")


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
    with atomic_path(target, suffix=suffix) as tmp:
        SEGMENTATION_WRITERS[suffix](seg, labels, tmp, models)
    return target


def _write_labelmap_file(seg: Segmentation, labels: np.ndarray, path: Path, models: dict | None = None) -> None:
    from .volume import write_volume

    write_volume(seg.labelmap.with_array(labels), path, atomic=False)


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


def _write_seg_nrrd(seg: Segmentation, labels: np.ndarray, target: Path, models: dict | None = None) -> None:
    """Write a Slicer ``.seg.nrrd`` to ``target`` (not atomic by itself: callers write a temp name)."""
    import slicerio

    segmentation = {
        "voxels": np.ascontiguousarray(labels.transpose(2, 1, 0)),  # slicerio wants [i, j, k]
        "ijkToLPS": seg.labelmap.ijk_to_lps_matrix(),
        "containedRepresentationNames": ["Binary labelmap"],
        "masterRepresentation": "Binary labelmap",
        "segments": _segment_entries(seg, labels),
    }
    slicerio.write_segmentation(str(target), segmentation)


def _write_dicom_seg_file(seg: Segmentation, labels: np.ndarray, path: Path, models: dict | None = None) -> None:
    from .dicom_seg import write_dicom_seg

    write_dicom_seg(seg, seg.labelmap.source_files, path, models=models)


# A segmentation writer gets (segmentation, uint8 labels [k, j, i], path to write, the report's
# "models" entry) and writes the file's content to that path; atomicity is the caller's. New formats
# register here by suffix.
SegmentationWriter = Callable[[Segmentation, np.ndarray, Path, "dict | None"], None]
SEGMENTATION_WRITERS: dict[str, SegmentationWriter] = {
    ".seg.nrrd": _write_seg_nrrd,
    DICOM_SEG_SUFFIX: _write_dicom_seg_file,
    **{suffix: _write_labelmap_file for suffix in LABELMAP_SUFFIXES},
}


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


def report_text(report: dict[str, Any]) -> str:
    """The report as indented JSON; numpy values become plain numbers, NaN/Inf null."""
    return json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n"


def write_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the report as indented JSON, atomically."""
    write_text_atomic(path, report_text(report))
    return Path(path)


# ------------------------------------------------------------------------------ output plan

REPORT_SUFFIX = ".json"


def default_report_path(first_output: Path) -> Path:
    """``<name>.report.json`` next to the first segmentation output."""
    name = first_output.name
    for suffix in sorted(SEGMENTATION_WRITERS, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return first_output.with_name(name + ".report.json")


@dataclasses.dataclass
class OutputPlan:
    """Every file one run writes, checked before any work starts and written as one transaction.

    Build it with :meth:`build` from the command's arguments before loading a model: it refuses an
    unsupported extension, a folder, an unwritable place, an output that is one of the inputs
    (through symlinks, hard links, or a DICOM series' files) and two outputs that are the same file.
    :meth:`write` then writes all of them or none (see :class:`~LoGSAMLib.atomic.OutputTransaction`).
    """

    segmentations: list[Path]
    report: Path
    inputs: list[Path] = dataclasses.field(default_factory=list)
    # Other files of the same run (e.g. a cross-check): path -> a function writing the content to
    # the temporary path it is given. Add them with add_extra, which checks them like the others.
    extras: dict[Path, Callable[[Path], None]] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, segmentations: Sequence[str | os.PathLike], report: str | os.PathLike | None,
              inputs: Iterable[str | os.PathLike] = ()) -> OutputPlan:
        segs = [Path(p) for p in segmentations]
        if not segs and report is None:
            raise InputError("Give at least one output with -o.")
        plan = cls(segs, Path(report) if report is not None else default_report_path(segs[0]),
                   [Path(p) for p in inputs])
        plan.check()
        return plan

    def add_extra(self, path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
        """One more output of this run, written in the same transaction; checked at once."""
        self.extras[Path(path)] = writer
        try:
            self.check()
        except InputError:
            del self.extras[Path(path)]
            raise

    @property
    def paths(self) -> list[Path]:
        return [*self.segmentations, self.report, *self.extras]

    def suffixes(self) -> dict[Path, str]:
        return {**{p: _suffix(p) for p in self.segmentations}, self.report: REPORT_SUFFIX,
                **{p: "".join(p.suffixes) or ".tmp" for p in self.extras}}

    def check(self) -> None:
        """Raise :class:`InputError` (one line) for the first output that cannot or must not be written."""
        for n, path in enumerate(self.paths):  # identity first: it is the worst mistake
            for source in self.inputs:
                if _same_file(path, source):
                    raise InputError(f"Refusing to write {path}: it is the input {source}, which is never "
                                     "overwritten; choose another output name.")
            for other in self.paths[:n]:
                if _same_file(path, other):
                    raise InputError(f"Two outputs are the same file ({other} and {path}); give each its own "
                                     "name (the report defaults to <first output>.report.json).")
        for path in self.paths:
            _check_not_folder(path)
        for path in self.segmentations:
            _suffix(path)
        if not self.report.name.lower().endswith(REPORT_SUFFIX):
            raise InputError(f"The report {self.report} must be a {REPORT_SUFFIX} file.")
        for path in self.paths:
            problem = check_writable_folder(path.parent)
            if problem:
                raise InputError(f"Cannot write {path}: {problem}.")

    def write(self, seg: Segmentation, report: dict[str, Any]) -> list[Path]:
        """Write every segmentation output and the report: all of them, or none."""
        labels = _uint8_labels(seg.labelmap)
        text = report_text(report)
        suffixes = self.suffixes()
        try:
            with OutputTransaction(self.paths, suffixes) as transaction:
                for path in self.segmentations:
                    SEGMENTATION_WRITERS[suffixes[path]](seg, labels, transaction.temp(path), report.get("models"))
                    transaction.written(path)
                transaction.temp(self.report).write_text(text, encoding="utf-8")
                transaction.written(self.report)
                for path, writer in self.extras.items():
                    writer(transaction.temp(path))
                    transaction.written(path)
        except (OSError, RuntimeError) as error:  # disk full, folder gone, an ITK/slicerio write error
            raise _write_failed(error) from error
        return self.paths

    def write_report_only(self, report: dict[str, Any]) -> Path:
        """Only the report (nothing was segmented): the transcript and findings are kept."""
        text = report_text(report)
        try:
            with OutputTransaction([self.report]) as transaction:
                transaction.temp(self.report).write_text(text, encoding="utf-8")
                transaction.written(self.report)
        except (OSError, RuntimeError) as error:
            raise _write_failed(error) from error
        return self.report


def _write_failed(error: Exception) -> OutputError:
    if isinstance(error, OSError) and error.strerror:
        reason = error.strerror + (f" ({error.filename})" if error.filename else "")
    else:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return OutputError(f"Writing the outputs failed: {reason}; nothing was written (files they would have "
                       "replaced are unchanged).")


def _check_not_folder(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"Cannot write {path}: it is a folder; give a file name inside it, e.g. "
                         f"{path / ('segmentation' + _example_suffix(path))}.")
    if path.exists() and not path.is_file():
        raise InputError(f"Cannot write {path}: it exists and is not a regular file.")


def _example_suffix(path: Path) -> str:
    return ".report.json" if path.name.lower().endswith(REPORT_SUFFIX) else ".nii.gz"


def _same_file(a: Path, b: Path) -> bool:
    """The same file by resolved path (symlinks, '..') or by device and inode (hard links)."""
    try:
        if a.expanduser().resolve() == b.expanduser().resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: then stat below decides
        pass
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


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
