"""``summary.csv``: one row per case, built from its report (this run's or a verified earlier one),
and the Dice totals through ``evaluation``."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from .. import SUPPORTED_CLASSES
from .manifest import Case

# done: outputs written; no_finding: the dictation affirms no class (report only, as `logsam run`);
# cross_check_failed: the transcript and its English translation name different classes, and no reader
# can confirm in a batch (report only); failed: the case's error is in the row; not_run: the batch
# stopped (Ctrl-C) before it finished.
STATUSES = ("done", "no_finding", "cross_check_failed", "failed", "not_run")
FINISHED = ("done", "no_finding", "cross_check_failed")  # a verified report: skipped when run again
COLUMNS = ("case", "status", "this_run", "attempts", "affirmed",
           *(f"{c}_ml" for c in SUPPORTED_CLASSES), "detector_calls", "segmented_slices",
           "transcribe_s", "pipeline_s", "total_s", "lesions", "dice", "error")
SUMMARY_NAME = "summary.csv"
EVALUATION_NAME = "evaluation.csv"


def row_from_report(case: Case, report: dict[str, Any], this_run: bool, attempts: int = 0) -> dict[str, Any]:
    batch = report.get("batch") or {}
    timings = batch.get("timings_s") or {}
    stats = report.get("statistics") or {}
    search = report.get("search") or {}
    slices = {s for tracks in (report.get("tracks") or {}).values() for track in tracks
              for s in track.get("boxes", {})}
    classes = report.get("classes") or []
    evaluation = report.get("evaluation") or {}
    row: dict[str, Any] = {
        "case": case.case,
        "status": "done" if report.get("outputs") else _not_segmented(report),
        "this_run": int(this_run),
        "attempts": attempts,
        "affirmed": " ".join(classes),
        "detector_calls": sum(v.get("detector_slices", 0) for v in search.values() if isinstance(v, dict)),
        "segmented_slices": len(slices),
        "transcribe_s": timings.get("transcribe"),
        "pipeline_s": timings.get("pipeline"),
        "total_s": timings.get("total"),
        "lesions": _lesions(report.get("lesions") or []),
        "dice": evaluation.get("dice"),
        "error": "",
    }
    for name in SUPPORTED_CLASSES:
        row[f"{name}_ml"] = round(stats[name]["volume_ml"], 4) if name in stats else None
    return row


def _not_segmented(report: dict[str, Any]) -> str:
    check = report.get("cross_check")
    return "cross_check_failed" if isinstance(check, dict) and check.get("agree") is False else "no_finding"


def _lesions(lesions: list[dict[str, Any]]) -> str:
    """Each lesion's measurements in one cell: ``glioma 1: 14.21 mL, 34.0 x 28.0 mm (slice 82); ...``."""
    return "; ".join(f"{x['id']}: {x['volume_ml']:.2f} mL, {x['diameter_long_mm']:.1f} x "
                     f"{x['diameter_perpendicular_mm']:.1f} mm (slice {x['axial_slice']})" for x in lesions)


def failed_row(case: Case, error: str, attempts: int, seconds: float | None = None,
               status: str = "failed") -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS)
    row.update(case=case.case, status=status, this_run=int(status != "not_run"), attempts=attempts,
               total_s=None if seconds is None else round(seconds, 3), error=error)
    return row


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def evaluation_result(reports: list[dict[str, Any]]):
    """The cases with ground truth as an ``evaluation.EvaluationResult`` (None when there are none)."""
    from ..evaluation import CaseResult, EvaluationResult

    rows = []
    for report in reports:
        scored = report.get("evaluation")
        if scored:
            values = {k: (math.nan if v is None and k in ("dice", "iou") else v) for k, v in scored.items()}
            rows.append(CaseResult(**values))
    return EvaluationResult(rows=rows, dimension=3) if rows else None


def write_summary(folder: Path, rows: list[dict[str, Any]], reports: list[dict[str, Any]]) -> list[Path]:
    """``summary.csv`` and, with ground truth, ``evaluation.csv`` + ``evaluation_summary.csv``."""
    from ..atomic import write_text_atomic
    from ..evaluation import write_csv

    path = folder / SUMMARY_NAME
    write_text_atomic(path, csv_text(rows))
    written = [path]
    result = evaluation_result(reports)
    if result is not None:
        written += write_csv(result, folder / EVALUATION_NAME)
    return written
