"""Segmenter per-slice cost and LiteMedSAM's accuracy from boxes.

Speed: MedSAM in the real-size SAM ViT-B architecture at 1024 px (random weights: the trained
model's compute, meaningless masks), fp32 and bf16/fp16 autocast, batch 1 and batch 4 slices;
LiteMedSAM with its real weights. One box per slice; the time covers preprocessing, the
encoder, the decoder and the upsampling (``Segmenter.segment_many``), per slice.

Accuracy (not in ``--quick``): LiteMedSAM's mean Dice on MNI152 phantom slices with boxes from
the ground truth: tight, enlarged by 10/20/30 % about the centre, and shifted diagonally by
10/20/30 % of the box size (mean of the four diagonals); 24 slices through three gliomas, two
meningiomas and a pituitary adenoma (``LoGSAMLib.segmentation.study``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import RANDOM_WEIGHTS, log, measure, ratio, row

SLICE = (233, 197)  # an axial MNI152 slice at 1 mm
BOX = np.array([[60.0, 70.0, 120.0, 140.0]])
# segment-anything's global attention materialises (batch x 12 heads) x 4096 x 4096 fp32 scores,
# about three copies at once: ~2.5 GB per ViT-B slice on the CPU.
VIT_B_GB_PER_SLICE = 2.5


def _available_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _medsam(quick: bool, device: str, precision: str, model: Any = None) -> Any:
    import torch

    from LoGSAMLib.segmentation.medsam import MedSAM, architecture, build_sam
    from LoGSAMLib.testing import tiny_sam

    if model is None:
        torch.manual_seed(0)
        model = build_sam(architecture(tiny_sam.TINY_CONFIG if quick else None))
    return MedSAM(model, device=device, precision=precision)


def _lite(device: str, precision: str, model: Any = None) -> Any:
    from LoGSAMLib.models import model_path
    from LoGSAMLib.segmentation.litemedsam import LiteMedSAM

    if model is None:
        return LiteMedSAM.from_checkpoint(model_path("litemedsam"), device=device, precision=precision)
    return LiteMedSAM(model, device=device, precision=precision)


def speed_rows(repeats: int, quick: bool, device: str, warmup: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    slices = [rng.integers(0, 256, SLICE, dtype=np.uint8) for _ in range(4)]
    half = "fp16" if str(device).startswith("cuda") else "bf16"
    settings = [("MedSAM ViT-B", 1, "fp32"), ("MedSAM ViT-B", 1, half), ("MedSAM ViT-B", 4, "fp32"),
                ("LiteMedSAM", 1, "fp32"), ("LiteMedSAM", 4, "fp32")]
    if str(device).startswith("cuda"):  # CPUs without native bf16 emulate it: b1 already shows the cost
        settings.insert(3, ("MedSAM ViT-B", 4, half))
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    baseline = None
    for family, batch, precision in settings:
        if family == "LiteMedSAM":
            segmenter = _lite(device, precision, models.get(family))
        else:
            segmenter = _medsam(quick, device, precision, models.get(family))
        models[family] = segmenter.model
        images, boxes = slices[:batch], [BOX] * batch
        name = f"{family} b{batch} {precision}" + (" autocast" if precision != "fp32" else "")
        available = _available_gb()
        needed = VIT_B_GB_PER_SLICE * batch + 2
        if family != "LiteMedSAM" and not quick and device == "cpu" and available is not None and available < needed:
            rows.append(row("segmentation", name, status="skipped", unit="slice",
                            note=f"needs ~{needed:.0f} GB of RAM, {available:.0f} GB available"))
            continue
        # A CPU without native bf16 emulates it (minutes per MedSAM slice): one call shows that.
        emulated = device == "cpu" and precision != "fp32"
        timed = 1 if emulated else repeats
        log(f"segmentation {name}: {timed} timed calls of {batch} slice(s)")
        stats = measure(lambda s=segmenter, im=images, bx=boxes, b=batch: s.segment_many(im, bx, batch_size=b),
                        repeats=timed, warmup=0 if emulated else warmup, device=device)
        per_slice = stats["median_s"] / batch
        baseline = per_slice if baseline is None else baseline
        weights = "real" if family == "LiteMedSAM" else ("tiny" if quick else "random")
        size = 256 if family == "LiteMedSAM" else 1024
        rows.append(row(
            "segmentation", name, unit="slice", kind="measured", weights=weights,
            **{**stats, "median_s": per_slice, "min_s": stats["min_s"] / batch, "max_s": stats["max_s"] / batch},
            ratio=ratio(baseline, per_slice), vs="MedSAM ViT-B b1 fp32",
            note=f"{SLICE[0]}x{SLICE[1]} slice at {size} px, 1 box, batch {batch}, {device}"
                 + ("" if weights == "real" else "; " + ("tiny model" if quick else RANDOM_WEIGHTS)),
        ))
    return rows


def accuracy_rows(device: str) -> list[dict[str, Any]]:
    from LoGSAMLib.segmentation.study import box_sensitivity, phantom_cases

    segmenter = _lite(device, "fp32")
    cases = phantom_cases()
    log(f"segmentation accuracy: LiteMedSAM on {len(cases)} phantom slices")
    scores = box_sensitivity(segmenter, cases)
    groups = {"all kinds": [True] * len(cases)}
    groups.update({kind: [c.kind == kind for c in cases] for kind in sorted({c.kind for c in cases})})
    rows = []
    for condition, values in scores.items():
        for group, chosen in groups.items():
            if group != "all kinds" and condition != "tight":
                continue  # per kind: tight boxes only
            picked = [v for v, keep in zip(values, chosen, strict=True) if keep]
            rows.append(row(
                "segmentation", f"LiteMedSAM Dice, {condition} box, {group}", kind="accuracy", weights="real",
                dice=round(float(np.mean(picked)), 3), dice_min=round(float(np.min(picked)), 3), slices=len(picked),
                note=f"mean Dice {np.mean(picked):.3f} (min {np.min(picked):.3f}), {len(picked)} MNI152 phantom slices",
            ))
    return rows


def run(repeats: int = 3, quick: bool = False, device: str = "cpu", warmup: int = 1) -> list[dict[str, Any]]:
    """Speed rows (seconds per slice, ratio vs MedSAM b1 fp32), then accuracy rows (Dice)."""
    rows = speed_rows(1 if quick else repeats, quick, device, warmup)
    if not quick:
        rows += accuracy_rows(device)
    return rows


if __name__ == "__main__":
    import argparse

    from .common import print_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before the timed ones")
    parser.add_argument("--accuracy-only", action="store_true", help="only the LiteMedSAM Dice study")
    parser.add_argument("--speed-only", action="store_true", help="only the timings")
    args = parser.parse_args()
    if args.accuracy_only:
        print_table(accuracy_rows(args.device))
    elif args.speed_only:
        print_table(speed_rows(args.repeats, args.quick, args.device, args.warmup))
    else:
        print_table(run(args.repeats, args.quick, args.device, args.warmup))
