"""Follow-up: the change of each lesion between a prior and a current LoGSAM report.

Lesions are matched within their class by position: the pairs of centroids (patient LPS, mm)
that are closest overall (Hungarian assignment), each pair no farther apart than
``max(20 mm, the larger longest diameter of the two)``. This assumes the two studies share a
patient coordinate frame (as follow-ups registered to each other, or a patient positioned the
same way); a lesion left without a partner is "new" (current only) or "not found" (prior only).
Only measured values are compared: volume and the bidimensional product, as absolute and
relative changes; no response category is inferred.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

MIN_MATCH_DISTANCE_MM = 20.0


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """A LoGSAM JSON report with per-lesion measurements; InputError otherwise."""
    p = Path(path)
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"No such report: {p}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{p.name} is not a LoGSAM JSON report (it is not JSON).") from None
    lesions = report.get("lesions") if isinstance(report, dict) else None
    if not isinstance(lesions, list) or any(not isinstance(x, dict) or "centroid_lps" not in x for x in lesions):
        raise InputError(f"{p.name} holds no per-lesion measurements; write it with this LoGSAM version "
                         "(`logsam run` or `logsam segment`).")
    return report


def compare_lesions(prior: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per matched pair, then the new and the no longer found lesions."""
    from scipy.optimize import linear_sum_assignment

    rows: list[dict[str, Any]] = []
    classes = list(dict.fromkeys([x["class"] for x in prior] + [x["class"] for x in current]))
    for name in classes:
        before = [x for x in prior if x["class"] == name]
        after = [x for x in current if x["class"] == name]
        pairs: list[tuple[int, int]] = []
        if before and after:
            a = np.array([x["centroid_lps"] for x in before], float)
            b = np.array([x["centroid_lps"] for x in after], float)
            distance = np.linalg.norm(a[:, None] - b[None], axis=2)
            limit = np.maximum.outer([_diameter(x) for x in before], [_diameter(x) for x in after])
            limit = np.maximum(limit, MIN_MATCH_DISTANCE_MM)
            cost = np.where(distance <= limit, distance, 1e9)
            pairs = [(i, j) for i, j in zip(*linear_sum_assignment(cost), strict=True) if distance[i, j] <= limit[i, j]]
            pairs.sort()
        for i, j in pairs:
            rows.append(_change(before[i], after[j], float(np.linalg.norm(
                np.subtract(before[i]["centroid_lps"], after[j]["centroid_lps"])))))
        matched_before, matched_after = {i for i, _ in pairs}, {j for _, j in pairs}
        rows += [_change(None, x, None) for j, x in enumerate(after) if j not in matched_after]
        rows += [_change(x, None, None) for i, x in enumerate(before) if i not in matched_before]
    return rows


def compare_reports(prior: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    return {"lesions": compare_lesions(prior["lesions"], current["lesions"])}


def _diameter(lesion: dict[str, Any]) -> float:
    return float(lesion.get("diameter_long_mm") or 0.0)


def _relative(before: float, after: float) -> float | None:
    return (after - before) / before if before > 0 else None


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None, distance: float | None) -> dict[str, Any]:
    status = "matched" if before and after else ("new" if after else "not found")
    some = after or before
    assert some is not None
    entry: dict[str, Any] = {"class": some["class"], "status": status,
                             "prior_id": before["id"] if before else None,
                             "current_id": after["id"] if after else None,
                             "side": some.get("side"), "centroid_distance_mm": distance}
    for key, name in (("volume_ml", "volume_ml"), ("bidimensional_product_mm2", "product_mm2")):
        old = float(before[key]) if before else None
        new = float(after[key]) if after else None
        entry[f"prior_{name}"], entry[f"current_{name}"] = old, new
        entry[f"change_{name}"] = new - old if old is not None and new is not None else None
        entry[f"relative_change_{name}"] = (_relative(old, new) if old is not None and new is not None else None)
    return entry


def describe(rows: list[dict[str, Any]]) -> str:
    """The comparison as lines for the terminal."""
    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:+.0f} %"

    lines = []
    for r in rows:
        who = r["current_id"] or r["prior_id"]
        if r["status"] == "new":
            lines.append(f"  {who:<14} new: {r['current_volume_ml']:.2f} mL, {r['current_product_mm2']:.0f} mm²")
        elif r["status"] == "not found":
            lines.append(f"  {who:<14} not found now (prior {r['prior_id']}: {r['prior_volume_ml']:.2f} mL, "
                         f"{r['prior_product_mm2']:.0f} mm²)")
        else:
            lines.append(
                f"  {who:<14} (prior {r['prior_id']}) volume {r['prior_volume_ml']:.2f} -> "
                f"{r['current_volume_ml']:.2f} mL "
                f"({percent(r['relative_change_volume_ml'])}), bidimensional product {r['prior_product_mm2']:.0f} -> "
                f"{r['current_product_mm2']:.0f} mm² ({percent(r['relative_change_product_mm2'])})")
    return "\n".join(lines) if lines else "  no lesions in either report"
