"""Segmentation and detection metrics, and runners that score a model or saved outputs.

Segmentation metrics (boolean masks of equal shape)
- ``spacing`` is given as :class:`~LoGSAMLib.types.Volume` gives it: fastest axis first,
  ``(x, y)`` in 2D and ``(x, y, z)`` in 3D, i.e. the *reverse* of the array's axis order
  ``[k, j, i]``. ``None`` means 1 per axis (pixel units).
- Dice and IoU: both masks empty -> 1.0 (nothing to find and nothing found).
- HD95 (mm): the larger of the two directed 95th percentiles (numpy's linear
  interpolation) of the distances from one mask's surface voxels to the other's, as in
  MedPy and MONAI. A surface voxel is a mask voxel with a face neighbour outside the
  mask; outside the image counts as outside. Both empty -> ``nan`` (undefined, left out
  of means); exactly one empty -> ``inf``.
- Volume error: ``(pred_ml, gt_ml, (pred_ml - gt_ml) / gt_ml)``; relative error is
  ``nan`` when the ground truth is empty.

Cases and summaries
- A case is *positive* when its ground truth is non-empty. A positive case is
  *detected* when the prediction overlaps the ground truth by at least one voxel (the
  "detection rate" is the fraction of detected positive cases). A negative case is a
  *false positive* when the prediction has any voxel.
- Per class and over all cases: n, positives, negatives, mean Dice and IoU over the
  positive cases (the per-case mean that papers report), detection rate, false-positive
  rate over negative cases, and in 3D the mean HD95 over positive cases where it is
  finite and the mean absolute relative volume error.

Detection metrics (boxes ``(x0, y0, x1, y1)`` in pixel-corner coordinates)
- Matching: predictions in descending score order each take the still unmatched
  ground-truth box of the highest IoU, if that IoU >= the threshold (COCO's rule);
  otherwise the prediction is a false positive.
- Recall at IoU t: matched ground-truth boxes / all ground-truth boxes, over every box
  the detector returned (its own score threshold applies).
- AP: all-point interpolated average precision (PASCAL VOC 2010+): the area under the
  precision envelope (precision made non-increasing in recall) over all recall
  values reached; ``nan`` for a class without ground truth, 0 when there are no
  predictions. mAP is the mean AP over the classes that have ground truth.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import SUPPORTED_CLASSES
from .atomic import atomic_path
from .datasets import (
    IMAGE_EXTENSIONS,
    NO_TUMOR,
    VOLUME_EXTENSIONS,
    BriscCase,
    DetectionSample,
    _stem,
    load_brisc,
    parse_brisc_name,
    read_image_uint8,
    read_mask,
    stratum,
)
from .errors import InputError
from .progress import CancelToken, ProgressCallback, no_progress
from .types import Box, Volume

log = logging.getLogger(__name__)

Predict2D = Callable[[np.ndarray, str | None, str], np.ndarray]  # (image uint8, label, plane) -> mask
Predict3D = Callable[[Volume], np.ndarray]  # volume -> bool mask [k, j, i]
DetectFn = Callable[[np.ndarray, list[str]], list[Box]]  # (image uint8, classes) -> labelled boxes

# ------------------------------------------------------------------ mask metrics


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    return pred, gt


def _sampling(ndim: int, spacing: Sequence[float] | None) -> np.ndarray:
    """Spacing in array axis order (the reverse of the (x, y, z) order it is given in)."""
    if spacing is None:
        return np.ones(ndim)
    values = np.asarray(spacing, dtype=np.float64).ravel()
    if values.size != ndim:
        raise ValueError(f"spacing {tuple(values)} has {values.size} values for a {ndim}D mask")
    return values[::-1].copy()


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = _pair(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & gt).sum()) / total


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = _pair(pred, gt)
    union = int((pred | gt).sum())
    return 1.0 if union == 0 else int((pred & gt).sum()) / union


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=0)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile Hausdorff distance in the units of ``spacing`` (mm)."""
    from scipy import ndimage

    pred, gt = _pair(pred, gt)
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if not has_pred and not has_gt:
        return math.nan
    if not has_pred or not has_gt:
        return math.inf
    sampling = _sampling(pred.ndim, spacing)
    # Crop to the masks' bounding box plus one voxel: exact, and far cheaper on volumes.
    coords = np.argwhere(pred | gt)
    lo = np.maximum(coords.min(axis=0) - 1, 0)
    hi = np.minimum(coords.max(axis=0) + 2, pred.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    pred_surface, gt_surface = _surface(pred[crop]), _surface(gt[crop])
    to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=sampling)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)[gt_surface]
    return float(max(np.percentile(to_gt, 95), np.percentile(to_pred, 95)))


def volume_error(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[float, float, float]:
    """``(pred_ml, gt_ml, relative_error)`` with spacing in mm (1 mL = 1000 mm³)."""
    pred, gt = _pair(pred, gt)
    voxel_ml = float(np.prod(_sampling(pred.ndim, spacing))) / 1000.0
    ml_pred, ml_gt = int(pred.sum()) * voxel_ml, int(gt.sum()) * voxel_ml
    relative = (ml_pred - ml_gt) / ml_gt if ml_gt > 0 else math.nan
    return ml_pred, ml_gt, relative


# ------------------------------------------------------------------ box metrics


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` between xyxy boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class Matches:
    """The predictions of one image (and class), sorted by score, and what they matched."""

    scores: np.ndarray  # (N,) descending
    true_positive: np.ndarray  # (N,) bool
    n_gt: int
    gt_matched: np.ndarray  # (M,) bool


def match_detections(
    pred_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.5
) -> Matches:
    """Greedy matching of scored predictions to ground-truth boxes (rule in the module docstring)."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(scores) != len(pred_boxes):
        raise ValueError(f"{len(pred_boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(pred_boxes[order], gt_boxes)
    gt_matched = np.zeros(len(gt_boxes), dtype=bool)
    true_positive = np.zeros(len(order), dtype=bool)
    for row in range(len(order)):
        candidates = np.where(gt_matched, -1.0, overlaps[row]) if len(gt_boxes) else np.zeros(0)
        if candidates.size and candidates.max() >= iou_threshold:
            best = int(candidates.argmax())
            gt_matched[best] = True
            true_positive[row] = True
    return Matches(scores[order], true_positive, len(gt_boxes), gt_matched)


def recall_at_iou(matches: Sequence[Matches]) -> float:
    """Fraction of ground-truth boxes matched; ``nan`` without ground truth."""
    n_gt = sum(m.n_gt for m in matches)
    return sum(int(m.gt_matched.sum()) for m in matches) / n_gt if n_gt else math.nan


def average_precision(matches: Sequence[Matches]) -> float:
    """All-point interpolated AP over the matches of several images (one class)."""
    n_gt = sum(m.n_gt for m in matches)
    if n_gt == 0:
        return math.nan
    scores = np.concatenate([m.scores for m in matches]) if matches else np.zeros(0)
    if scores.size == 0:
        return 0.0
    hits = np.concatenate([m.true_positive for m in matches])[np.argsort(-scores, kind="stable")]
    tp = np.cumsum(hits)
    recall = tp / n_gt
    precision = tp / np.arange(1, len(hits) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(per_class: dict[str, Sequence[Matches]]) -> tuple[dict[str, float], float]:
    """AP per class and their mean over classes with ground truth (``nan`` if none)."""
    aps = {label: average_precision(matches) for label, matches in per_class.items()}
    defined = [ap for ap in aps.values() if not math.isnan(ap)]
    return aps, (float(np.mean(defined)) if defined else math.nan)


# ------------------------------------------------------------------ results


@dataclass
class CaseResult:
    case: str
    label: str  # class name, "no_tumor", or "" when unknown
    positive: bool
    dice: float
    iou: float
    detected: bool | None  # positive cases only
    false_positive: bool | None  # negative cases only
    hd95: float | None = None  # mm; 3D only
    volume_pred_ml: float | None = None
    volume_gt_ml: float | None = None
    volume_error: float | None = None


@dataclass
class ClassSummary:
    label: str
    n: int
    n_positive: int
    n_negative: int
    dice: float
    iou: float
    detection_rate: float
    false_positive_rate: float
    hd95: float | None = None
    abs_volume_error: float | None = None


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _class_order(label: str) -> tuple[int, str]:
    if label in SUPPORTED_CLASSES:
        return (0, f"{SUPPORTED_CLASSES.index(label):02d}")
    return (2, label) if label == NO_TUMOR else (1, label)


@dataclass
class EvaluationResult:
    rows: list[CaseResult] = field(default_factory=list)
    dimension: int = 2
    skipped: list[str] = field(default_factory=list)  # cases that could not be scored, with why

    def _summarize(self, label: str, rows: list[CaseResult]) -> ClassSummary:
        pos = [r for r in rows if r.positive]
        neg = [r for r in rows if not r.positive]
        summary = ClassSummary(
            label=label,
            n=len(rows),
            n_positive=len(pos),
            n_negative=len(neg),
            dice=_mean([r.dice for r in pos]),
            iou=_mean([r.iou for r in pos]),
            detection_rate=_mean([float(bool(r.detected)) for r in pos]),
            false_positive_rate=_mean([float(bool(r.false_positive)) for r in neg]),
        )
        if self.dimension == 3:
            summary.hd95 = _mean([r.hd95 for r in pos])
            summary.abs_volume_error = _mean([abs(r.volume_error) for r in pos if r.volume_error is not None])
        return summary

    @property
    def summary(self) -> dict[str, ClassSummary]:
        """Per-class summaries (when classes are known) and ``"all"``."""
        groups: dict[str, list[CaseResult]] = {}
        for row in self.rows:
            groups.setdefault(row.label or "other", []).append(row)
        out: dict[str, ClassSummary] = {}
        if any(row.label for row in self.rows):
            for label in sorted(groups, key=_class_order):
                out[label] = self._summarize(label, groups[label])
        out["all"] = self._summarize("all", self.rows)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "cases": [_json_safe(asdict(r)) for r in self.rows],
            "summary": {k: _json_safe(asdict(v)) for k, v in self.summary.items()},
            "skipped": list(self.skipped),
        }


@dataclass
class ClassDetection:
    label: str
    n_images: int  # images with at least one ground-truth box of this class
    n_gt: int
    n_pred: int
    recall: float
    ap: float


@dataclass
class DetectionResult:
    classes: list[ClassDetection]
    n_images: int
    iou_threshold: float = 0.5

    @property
    def mean_recall(self) -> float:
        return _mean([c.recall for c in self.classes])

    @property
    def map(self) -> float:
        return _mean([c.ap for c in self.classes])

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({
            "iou_threshold": self.iou_threshold,
            "n_images": self.n_images,
            "classes": [asdict(c) for c in self.classes],
            "mean_recall": self.mean_recall,
            "map": self.map,
        })


def _json_safe(obj: Any) -> Any:
    """nan/inf are not JSON: write them as null / "inf"."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        return "inf" if math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


# ------------------------------------------------------------------ scoring one case


def score_case(
    name: str, label: str, pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None
) -> CaseResult:
    """All metrics of one case; ``spacing`` given (3D, mm) adds HD95 and volume error."""
    pred, gt = _pair(pred, gt)
    positive = bool(gt.any())
    row = CaseResult(
        case=name,
        label=label,
        positive=positive,
        dice=dice(pred, gt),
        iou=iou(pred, gt),
        detected=bool((pred & gt).any()) if positive else None,
        false_positive=None if positive else bool(pred.any()),
    )
    if spacing is not None:
        row.hd95 = hd95(pred, gt, spacing)
        row.volume_pred_ml, row.volume_gt_ml, row.volume_error = volume_error(pred, gt, spacing)
    return row


def _checked_prediction(pred: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.shape != shape:
        raise ValueError(f"prediction for {name} has shape {pred.shape}, expected {shape}")
    return pred.astype(bool)


def _spread(items: list, limit: int | None, key: Callable[[Any], str]) -> list:
    """The first ``limit`` items taken round-robin over classes, so a small limit sees every class."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}.")
    queues: dict[str, list] = {}
    for item in items:
        queues.setdefault(key(item), []).append(item)
    chosen: list = []
    while len(chosen) < limit:
        for queue in queues.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order = {id(item): i for i, item in enumerate(items)}
    return sorted(chosen, key=lambda item: order[id(item)])


def _loop(items: list, progress: ProgressCallback | None, cancel: CancelToken | None, name: Callable):
    progress = progress or no_progress
    for i, item in enumerate(items):
        if cancel is not None:
            cancel.check()
        progress("evaluate", i / len(items), name(item))
        yield item
    progress("evaluate", 1.0, "done")


# ------------------------------------------------------------------ runners


def evaluate_brisc(
    root: str | os.PathLike,
    predict_fn: Predict2D,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    limit: int | None = None,
    split: str | None = None,
    include_negatives: bool = False,
) -> EvaluationResult:
    """Run ``predict_fn(image_uint8, label, plane) -> mask`` on a BRISC folder and score it.

    The label comes from the file name (BRISC has no dictation). No-tumor images are
    scored only with ``include_negatives`` (``label`` is then ``None``). Tumor images
    without a mask are listed in ``skipped``. ``limit`` spreads over the classes.
    """
    result = EvaluationResult(dimension=2)
    cases: list[BriscCase] = []
    for case in load_brisc(root, split=split):
        if case.label is None and not include_negatives:
            continue
        if case.label is not None and case.mask_path is None:
            result.skipped.append(f"{case.name}: no mask")
            continue
        cases.append(case)
    if not cases:
        raise InputError(f"No BRISC cases with masks to evaluate under {str(root)!r}.")
    for case in _loop(_spread(cases, limit, stratum), progress, cancel, lambda c: c.name):
        image = read_image_uint8(case.image_path)
        gt = read_mask(case.mask_path) if case.mask_path is not None else np.zeros(image.shape, bool)
        if gt.shape != image.shape:
            raise InputError(f"Mask {case.mask_path.name} is {gt.shape[::-1]} but its image is {image.shape[::-1]}.")
        pred = _checked_prediction(predict_fn(image, case.label, case.plane), image.shape, case.name)
        result.rows.append(score_case(case.name, case.class_name, pred, gt))
    return result


def _read_volume(path: Path) -> Volume:
    """A scalar image file as a Volume (2D files become one-slice volumes)."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"Cannot read {str(path)!r}: {str(error).strip().splitlines()[-1]}") from error
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() not in (2, 3):
        raise InputError(f"{str(path)!r} is not a scalar 2D/3D image; save one channel/time point per file.")
    array = sitk.GetArrayFromImage(image)
    if image.GetDimension() == 2:
        direction = np.eye(3)
        direction[:2, :2] = np.reshape(image.GetDirection(), (2, 2))
        return Volume(array[None], (*image.GetSpacing(), 1.0), (*image.GetOrigin(), 0.0), direction)
    return Volume(array, image.GetSpacing(), image.GetOrigin(), np.reshape(image.GetDirection(), (3, 3)))


def _check_geometry(pred: Volume, gt: Volume, pred_name: str) -> None:
    if pred.array.shape != gt.array.shape:
        raise InputError(
            f"{pred_name} has size {pred.shape_ijk} but its ground truth has {gt.shape_ijk}; "
            "resample the prediction onto the ground-truth grid."
        )
    if not np.allclose(pred.spacing, gt.spacing, rtol=1e-3, atol=1e-4):
        log.warning("%s: spacing %s differs from ground truth %s; using the ground truth's",
                    pred_name, pred.spacing, gt.spacing)


def evaluate_volumes(
    pairs: Sequence[tuple[Path, Path]],
    predict_fn3d: Predict3D,
    label: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    limit: int | None = None,
) -> EvaluationResult:
    """Run ``predict_fn3d(volume) -> mask`` on (image, label map) pairs; any label > 0 is tumor."""
    result = EvaluationResult(dimension=3)
    pairs = list(pairs)[:limit] if limit else list(pairs)
    if not pairs:
        raise InputError("No image/label pairs to evaluate.")
    for image_path, label_path in _loop(pairs, progress, cancel, lambda p: Path(p[0]).name):
        volume, truth = _read_volume(Path(image_path)), _read_volume(Path(label_path))
        if truth.array.shape != volume.array.shape:
            raise InputError(f"{Path(label_path).name} has size {truth.shape_ijk} but {Path(image_path).name} "
                             f"has {volume.shape_ijk}; the label map must be on the image's grid.")
        pred = _checked_prediction(predict_fn3d(volume), volume.array.shape, Path(image_path).name)
        result.rows.append(score_case(_stem(Path(image_path).name), label or "", pred, truth.array > 0,
                                      truth.spacing))
    return result


_PRED_SUFFIXES = ("_pred", "_prediction", "_seg", "_label", "_labels", "_mask", "_gt")


def _mask_files(directory: Path) -> dict[str, Path]:
    """Mask/label files of a folder by case key (stem without a _pred/_seg/_mask suffix)."""
    files: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        name = path.name.lower()
        if not path.is_file() or not name.endswith(VOLUME_EXTENSIONS + IMAGE_EXTENSIONS + (".bmp", ".tif", ".tiff")):
            continue
        stem = _stem(path.name)
        key = next((stem[: -len(s)] for s in _PRED_SUFFIXES if stem.lower().endswith(s)), stem)
        if key in files:
            raise InputError(f"{directory}: both {files[key].name} and {path.name} are case {key!r}; keep one.")
        files[key] = path
    return files


def _is_volume(path: Path) -> bool:
    return path.name.lower().endswith(VOLUME_EXTENSIONS)


def _brisc_class(name: str) -> str:
    try:
        return parse_brisc_name(name).label or NO_TUMOR
    except InputError:
        return ""


def evaluate_predictions(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> EvaluationResult:
    """Score saved predictions against ground truth, matched by file name.

    2D masks (PNG and other images, thresholded like BRISC masks) or 3D label maps
    (.nii/.nii.gz/.nrrd/.mha; any value > 0 is tumor, metrics in the ground truth's
    spacing). Names may differ by a ``_pred``/``_seg``/``_mask``/``_label``/``_gt``
    suffix and by format. BRISC names give each case its class. Ground-truth files
    without a prediction are listed in ``skipped``; a ``gt_dir`` holding a ``masks/``
    folder (BRISC's ``segmentation_task/test``) is read from there.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for directory, what in ((pred_dir, "predictions"), (gt_dir, "ground-truth")):
        if not directory.is_dir():
            raise InputError(f"The {what} folder {str(directory)!r} does not exist.")
    gt_files = _mask_files(gt_dir)
    if not gt_files and (gt_dir / "masks").is_dir():
        gt_files = _mask_files(gt_dir / "masks")
    if not gt_files:
        raise InputError(f"No ground-truth masks or label maps in {str(gt_dir)!r}.")
    pred_files = _mask_files(pred_dir)
    keys = [k for k in gt_files if k in pred_files]
    if not keys:
        raise InputError(f"No prediction in {str(pred_dir)!r} has the name of a ground-truth file in "
                         f"{str(gt_dir)!r} (e.g. {next(iter(gt_files.values())).name}).")
    kinds = {_is_volume(gt_files[k]) for k in keys}
    if len(kinds) > 1:
        raise InputError("The ground truth mixes 2D masks and 3D label maps; evaluate them separately.")
    three_d = kinds.pop()
    result = EvaluationResult(dimension=3 if three_d else 2)
    result.skipped = [f"{gt_files[k].name}: no prediction" for k in gt_files if k not in pred_files]
    for key in _loop(keys, progress, cancel, lambda k: k):
        pred_path, gt_path = pred_files[key], gt_files[key]
        if three_d:
            gt, pred = _read_volume(gt_path), _read_volume(pred_path)
            _check_geometry(pred, gt, pred_path.name)
            result.rows.append(score_case(key, _brisc_class(key), pred.array > 0, gt.array > 0, gt.spacing))
        else:
            gt2, pred2 = read_mask(gt_path), read_mask(pred_path)
            if gt2.shape != pred2.shape:
                raise InputError(f"{pred_path.name} is {pred2.shape[::-1]} pixels but {gt_path.name} is "
                                 f"{gt2.shape[::-1]}; predictions must have the image's size.")
            result.rows.append(score_case(key, _brisc_class(key), pred2, gt2))
    return result


# ------------------------------------------------------------------ detection runners


def dataset_classes(samples: Sequence[DetectionSample]) -> list[str]:
    """The classes with boxes in ``samples``, in the usual order (supported classes first)."""
    found = {label for s in samples for label in s.labels}
    return sorted(found, key=_class_order)


def score_detections(
    samples: Sequence[DetectionSample],
    predictions: Sequence[Sequence[Box]],
    classes: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
) -> DetectionResult:
    """Recall and AP per class for ``predictions[i]`` (labelled boxes) on ``samples[i]``.

    Usable by the training loop's validation as well as by :func:`evaluate_detector`.
    Predicted boxes whose label is not one of ``classes`` are ignored.
    """
    if len(samples) != len(predictions):
        raise ValueError(f"{len(samples)} samples but {len(predictions)} prediction lists")
    classes = list(classes) if classes is not None else dataset_classes(samples)
    per_class: dict[str, list[Matches]] = {c: [] for c in classes}
    counts = {c: [0, 0] for c in classes}  # images with gt, predictions
    for sample, boxes in zip(samples, predictions, strict=True):
        labels = np.array(sample.labels, dtype=object)
        for c in classes:
            mine = [b for b in boxes if b.label == c]
            gt = sample.boxes[labels == c] if len(labels) else np.zeros((0, 4))
            per_class[c].append(match_detections(
                np.array([b.as_array() for b in mine]).reshape(-1, 4), [b.score for b in mine], gt, iou_threshold))
            counts[c][0] += int(len(gt) > 0)
            counts[c][1] += len(mine)
    aps, _ = mean_average_precision(per_class)
    rows = [
        ClassDetection(c, counts[c][0], sum(m.n_gt for m in per_class[c]), counts[c][1],
                       recall_at_iou(per_class[c]), aps[c])
        for c in classes
    ]
    return DetectionResult(rows, len(samples), iou_threshold)


def evaluate_detector(
    samples: Sequence[DetectionSample],
    detect_fn: DetectFn,
    classes: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    limit: int | None = None,
) -> DetectionResult:
    """Run ``detect_fn(image_uint8, classes) -> [Box]`` (Box.label one of ``classes``) and score it."""
    if not samples:
        raise InputError("No images to evaluate the detector on.")
    classes = list(classes) if classes is not None else dataset_classes(samples)
    if not classes:
        raise InputError("The data set has no labelled boxes; nothing to measure recall or AP against.")
    chosen = _spread(list(samples), limit, stratum)
    predictions = [
        list(detect_fn(read_image_uint8(s.image_path), classes))
        for s in _loop(chosen, progress, cancel, lambda s: s.image_path.name)
    ]
    return score_detections(chosen, predictions, classes, iou_threshold)


# ------------------------------------------------------------------ reporting


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def summary_csv_path(path: str | os.PathLike) -> Path:
    """Where :func:`write_csv` puts a segmentation result's summary: ``<name>_summary.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_summary{path.suffix or '.csv'}")


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_csv(result: EvaluationResult | DetectionResult, path: str | os.PathLike) -> list[Path]:
    """Write the result as CSV, atomically; returns the files written.

    Segmentation: one row per case in ``path`` and one row per class plus ``all`` in
    :func:`summary_csv_path`. Detection: one row per class plus ``mean`` in ``path``.
    Booleans are 1/0, undefined values empty cells (nan is written as ``nan``).
    """
    path = Path(path)
    if isinstance(result, DetectionResult):
        rows = [[c.label, c.n_images, c.n_gt, c.n_pred, c.recall, c.ap] for c in result.classes]
        rows.append(["mean", result.n_images, sum(c.n_gt for c in result.classes),
                     sum(c.n_pred for c in result.classes), result.mean_recall, result.map])
        _write_text(path, _csv_text(["class", "n_images", "n_gt", "n_pred",
                                     f"recall@{result.iou_threshold:g}", f"ap@{result.iou_threshold:g}"], rows))
        return [path]
    three_d = result.dimension == 3
    header = ["case", "class", "positive", "dice", "iou", "detected", "false_positive"]
    extra = ["hd95_mm", "volume_pred_ml", "volume_gt_ml", "volume_error"] if three_d else []
    case_rows = [
        [r.case, r.label, r.positive, r.dice, r.iou, r.detected, r.false_positive]
        + ([r.hd95, r.volume_pred_ml, r.volume_gt_ml, r.volume_error] if three_d else [])
        for r in result.rows
    ]
    summary_header = ["class", "n", "n_positive", "n_negative", "dice", "iou", "detection_rate",
                      "false_positive_rate"] + (["hd95_mm", "abs_volume_error"] if three_d else [])
    summary_rows = [
        [s.label, s.n, s.n_positive, s.n_negative, s.dice, s.iou, s.detection_rate, s.false_positive_rate]
        + ([s.hd95, s.abs_volume_error] if three_d else [])
        for s in result.summary.values()
    ]
    summary_path = summary_csv_path(path)
    _write_text(path, _csv_text(header + extra, case_rows))
    _write_text(summary_path, _csv_text(summary_header, summary_rows))
    return [path, summary_path]


def _percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _align(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_table(result: EvaluationResult | DetectionResult) -> str:
    """An aligned plain-text table of the summary (percentages with two decimals)."""
    if isinstance(result, DetectionResult):
        t = f"{result.iou_threshold:g}"
        rows = [[c.label, str(c.n_images), str(c.n_gt), str(c.n_pred), _percent(c.recall), _percent(c.ap)]
                for c in result.classes]
        rows.append(["mean", str(result.n_images), "", "", _percent(result.mean_recall), _percent(result.map)])
        return _align(["class", "images", "gt", "pred", f"recall@{t} %", f"AP@{t} %"], rows)
    three_d = result.dimension == 3
    header = ["class", "n", "pos", "Dice %", "IoU %", "detected %", "FP %"]
    header += ["HD95 mm", "|vol err| %"] if three_d else []
    rows = []
    for s in result.summary.values():
        row = [s.label, str(s.n), str(s.n_positive), _percent(s.dice), _percent(s.iou),
               _percent(s.detection_rate), _percent(s.false_positive_rate)]
        rows.append(row + ([_number(s.hd95), _percent(s.abs_volume_error)] if three_d else []))
    text = _align(header, rows)
    if result.skipped:
        more = ", ..." if len(result.skipped) > 1 else ""
        text += f"\n({len(result.skipped)} case(s) skipped: {result.skipped[0]}{more})"
    return text
