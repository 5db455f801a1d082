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
# failed: the case's error is in the row; not_run: the batch stopped (Ctrl-C) before it finished.
STATUSES = ("done", "no_finding", "failed", "not_run")
COLUMNS = ("case", "status", "this_run", "attempts", "affirmed",
           *(f"{c}_ml" for c in SUPPORTED_CLASSES), "detector_calls", "segmented_slices",
           "transcribe_s", "pipeline_s", "total_s", "dice", "error")
SUMMARY_NAME = "summary.csv"
EVALUATION_NAME = "evaluation.csv"


def row_from_report(case: Case, report: dict[str, Any], this_run: bool, attempts: int = 0) -> dict[str, Any]:
    batch = report.get("batch") or {}
    timings = batch.get("timings_s") or {}
    stats = report.get("statistics") or {}
    search = report.get("search") or {}
    slices = {s for lesions in (report.get("lesions") or {}).values() for lesion in lesions
              for s in lesion.get("boxes", {})}
    classes = report.get("classes") or []
    evaluation = report.get("evaluation") or {}
    row: dict[str, Any] = {
        "case": case.case,
        "status": "done" if report.get("outputs") else "no_finding",
        "this_run": int(this_run),
        "attempts": attempts,
        "affirmed": " ".join(classes),
        "detector_calls": sum(v.get("detector_slices", 0) for v in search.values() if isinstance(v, dict)),
        "segmented_slices": len(slices),
        "transcribe_s": timings.get("transcribe"),
        "pipeline_s": timings.get("pipeline"),
        "total_s": timings.get("total"),
        "dice": evaluation.get("dice"),
        "error": "",
    }
    for name in SUPPORTED_CLASSES:
        row[f"{name}_ml"] = round(stats[name]["volume_ml"], 4) if name in stats else None
    return row


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
