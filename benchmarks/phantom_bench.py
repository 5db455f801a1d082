"""The 3D phantom suite (issue 15): box mode and the pipeline's per-slice search, old and new
methods side by side in one run, with the real LiteMedSAM and true boxes for the detector.

    python -m benchmarks.phantom_bench [--quick] [--cases NAME ...] [--margins]

Per case: Dice, segmenter slices, detector slices and seconds for ``box plain`` (box mode as it
was: the box on every slice), ``box`` (prompts that follow the lesion), ``slices plain`` (the
search's true boxes as given: also the per-slice true-box reference for box mode) and ``slices``
(measured margin and core-only guard). ``--margins`` adds the margin study that chose
``LoGSAMLib.box_margin.MEASURED``: true tight boxes plus 0-6 px, every lesion slice, single mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import log, row

MARGINS_PX = (0, 1, 2, 3, 4, 6)


def suite_rows(quick: bool, names: list[str] | None = None) -> list[dict[str, Any]]:
    from LoGSAMLib.segmentation import load_segmenter
    from LoGSAMLib.testing.phantom_suite import METHODS, run_case, suite

    segmenter = load_segmenter("litemedsam", device="cpu")
    cases = [c for c in suite(quick) if not names or c.name in names]
    rows: list[dict[str, Any]] = []
    for case in cases:
        log(f"phantom suite: {case.name}")
        outcomes = {o.method: o for o in run_case(case, segmenter, METHODS)}
        reference = outcomes["slices plain"].dice
        for method, o in outcomes.items():
            log(f"  {case.name} {method}: Dice {o.dice:.3f}, {o.segmenter_slices} segmenter and "
                f"{o.detector_slices} detector slices, {o.seconds:.0f} s")
            rows.append(row("phantom", f"{case.name}: {method}", kind="accuracy", weights="real",
                            case=case.name, method=method, dice=round(o.dice, 3), seconds=round(o.seconds, 1),
                            segmenter_slices=o.segmenter_slices, detector_slices=o.detector_slices,
                            vs_true_boxes=round(o.dice - reference, 3), grid=case.grid, size_mm=case.size_mm,
                            noisy=case.box_noise, note=f"Dice {o.dice:.3f}; {o.segmenter_slices} segmenter, "
                                                       f"{o.detector_slices} detector slices; {o.seconds:.0f} s"))
    return rows


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 15's targets, checked on the rows of one run."""
    by = {(r["case"], r["method"]): r for r in rows if r.get("stage") == "phantom" and "method" in r}
    cases = sorted({c for c, _ in by})
    out = []
    big_1mm = [c for c in cases if by[(c, "box")]["grid"] == "1mm" and by[(c, "box")]["size_mm"] >= 12
               and not by[(c, "box")]["noisy"]]
    low = {c: by[(c, "box")]["dice"] for c in big_1mm if by[(c, "box")]["dice"] < 0.90}
    out.append({"target": "box mode Dice >= 0.90 on every 1 mm phantom of 12 mm and more", "met": not low,
                "value": "all met" if not low else ", ".join(f"{c} {d:.3f}" for c, d in low.items())})
    worse = {c: by[(c, "box")]["vs_true_boxes"] for c in cases if by[(c, "box")]["vs_true_boxes"] < -0.03}
    out.append({"target": "box mode no worse than the per-slice true boxes by more than 0.03", "met": not worse,
                "value": "all met" if not worse else ", ".join(f"{c} {d:+.3f}" for c, d in worse.items())})
    drops = {c: by[(c, "slices")]["dice"] - by[(c, "slices plain")]["dice"] for c in cases}
    bad = {c: d for c, d in drops.items() if d < -0.01}
    new = np.mean([by[(c, "slices")]["dice"] for c in cases])
    old = np.mean([by[(c, "slices plain")]["dice"] for c in cases])
    out.append({"target": "pipeline: no case lower than today's search by more than 0.01, mean higher",
                "met": not bad and new > old,
                "value": f"mean {new:.3f} vs {old:.3f}" + ("" if not bad else "; lower: " + ", ".join(
                    f"{c} {d:+.3f}" for c, d in bad.items()))})
    return out


def margin_rows(quick: bool) -> list[dict[str, Any]]:
    """Dice of true tight boxes plus a margin, single-mask output, on the suite's 1 mm cases."""
    from LoGSAMLib.pipeline import Pipeline, PipelineOptions, _SliceFrame
    from LoGSAMLib.segmentation import load_segmenter
    from LoGSAMLib.testing.phantom_suite import build, suite

    segmenter = load_segmenter("litemedsam", device="cpu")
    plane = Pipeline(PipelineOptions()).options.plane
    rows = []
    for case in [c for c in suite(quick) if c.grid == "1mm" and not c.box_noise and len(c.lesions) == 1]:
        phantom = build(case)
        frame = _SliceFrame.build(phantom.volume, plane)
        lesion = phantom.instances.array > 0
        overlap = np.zeros(len(MARGINS_PX))
        sizes = np.zeros(len(MARGINS_PX))
        for s in np.flatnonzero(lesion.any(axis=tuple(a for a in range(3) if a != frame.axis))):
            truth = frame.view.to_display(np.take(lesion, s, axis=frame.axis))
            rows_, cols = np.nonzero(truth)
            tight = np.array([cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0])
            boxes = np.stack([tight + np.array([-m, -m, m, m]) for m in MARGINS_PX])
            masks = segmenter.segment_many([frame.display_image(int(s))], [boxes], batch_size=1)[0]
            overlap += [(m & truth).sum() for m in masks]
            sizes += [m.sum() + truth.sum() for m in masks]
        dice = 2 * overlap / np.maximum(sizes, 1)
        log(f"margins {case.name}: " + " ".join(f"{m}px {d:.3f}" for m, d in zip(MARGINS_PX, dice, strict=True)))
        for m, d in zip(MARGINS_PX, dice, strict=True):
            rows.append(row("phantom", f"margin {m} px: {case.name}", kind="accuracy", weights="real",
                            case=case.name, margin_px=m, dice=round(float(d), 3), note=f"Dice {d:.3f}"))
    return rows


def run(quick: bool = False, device: str = "cpu") -> list[dict[str, Any]]:
    """The full suite with every method, on the CPU (``quick``: one 5 mm case, a smoke run)."""
    rows = suite_rows(quick, ["g20-5mm"] if quick else None)
    for t in targets(rows):
        rows.append(row("phantom", t["target"], kind="target", met=t["met"], note=t["value"]))
    return rows


if __name__ == "__main__":
    import argparse

    from .common import print_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the three cases the tests run")
    parser.add_argument("--cases", nargs="+", help="only these cases (names as in the table)")
    parser.add_argument("--margins", action="store_true", help="also the margin study")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    table = suite_rows(args.quick, args.cases)
    if args.margins:
        table += margin_rows(args.quick)
    print_table(table, markdown=args.markdown)
    for t in targets(table):
        print(f"- [{'MET' if t['met'] else 'NOT MET'}] {t['target']}: {t['value']}")
