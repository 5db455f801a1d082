"""Grounding DINO Swin-T per-slice cost: batch 1 fp32 vs bf16/fp16 autocast, and batch 4.

The real-size architecture (Swin-T OGC + BERT-base) with random weights: the compute of the
trained model, meaningless outputs. Slices are 256x256 uint8, resized to 800x800 as in training.
The caption's BERT features are cached after the warm-up call, as in the pipeline.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .common import RANDOM_WEIGHTS, load_average, log, measure, ratio, row

CAPTION = "glioma ."
SLICE = (256, 256)


def _detector(quick: bool, device: str, precision: str | None, batch_size: int, model: Any = None) -> Any:
    import torch
    from transformers import AutoTokenizer

    from LoGSAMLib.detection import GroundingDinoDetector, build_model
    from LoGSAMLib.testing import tiny_gdino

    folder = Path(tempfile.mkdtemp(prefix="logsam-bench-gdino-"))
    tiny_gdino.write_text_encoder(folder)  # special tokens at bert-base ids; "glioma ." costs the same
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if model is None:
        torch.manual_seed(0)
        if quick:
            text = dict(tiny_gdino.TINY_BERT, vocab_size=len(tiny_gdino.tiny_vocab()))
            model = build_model({"architecture": tiny_gdino.TINY_ARCHITECTURE}, text)
        else:
            model = build_model(None, None)  # Swin-T OGC + bert-base-uncased, built locally
    return GroundingDinoDetector(model, tokenizer, device=device, precision=precision, batch_size=batch_size)


def run(repeats: int = 3, quick: bool = False, device: str = "cpu",
        only: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows: seconds per slice for each setting (``ratio`` against batch 1 fp32, same run).

    ``only``: setting names to run (e.g. ``["b1 fp32", "b4 fp32"]``); batch 1 fp32 always runs first.
    """
    rng = np.random.default_rng(0)
    slices = [rng.integers(0, 256, SLICE, dtype=np.uint8) for _ in range(4)]
    half = "fp16" if str(device).startswith("cuda") else "bf16"
    settings = [("b1 fp32", 1, "fp32"), (f"b1 {half} autocast", 1, half), ("b4 fp32", 4, "fp32")]
    if str(device).startswith("cuda"):
        settings.append((f"b4 {half} autocast", 4, half))
    if only:
        settings = [s for s in settings if s[0] in only or s[0] == "b1 fp32"]
    rows: list[dict[str, Any]] = []
    model = None
    baseline = None
    for name, batch, precision in settings:
        detector = _detector(quick, device, precision, batch, model)
        model = detector.model
        if quick:
            detector.short_side, detector.max_side = 128, 256
        images = slices[:batch]
        # A CPU without native bf16 emulates it (several times slower): one call shows that.
        emulated = device == "cpu" and precision != "fp32"
        timed = 1 if emulated else repeats
        log(f"detection {name}: {timed} timed calls of {batch} slice(s)")
        stats = measure(lambda d=detector, im=images: d.detect(im, CAPTION), repeats=timed,
                        warmup=0 if emulated else 1, device=device)
        per_slice = stats["median_s"] / batch
        baseline = per_slice if baseline is None else baseline
        rows.append(row(
            "detection", f"Grounding DINO Swin-T {name}", unit="slice", kind="measured",
            weights="tiny" if quick else "random",
            **{**stats, "median_s": per_slice, "min_s": stats["min_s"] / batch, "max_s": stats["max_s"] / batch},
            ratio=ratio(baseline, per_slice), vs="Grounding DINO Swin-T b1 fp32", load_average=load_average(),
            note=f"{SLICE[0]}x{SLICE[1]} slices at {detector.short_side} px, batch {batch}, {device}; "
                 + ("tiny model" if quick else RANDOM_WEIGHTS),
        ))
    return rows


if __name__ == "__main__":
    import argparse

    from .common import print_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="+", help='settings, e.g. "b4 fp32" "b1 bf16 autocast"')
    args = parser.parse_args()
    rows = run(args.repeats, args.quick, args.device, args.only)
    print_table(rows)
    for r in rows:
        print(r["name"], f"{r['median_s']:.2f} s/slice", f"runs {r.get('runs_s')}", f"load {r.get('load_average')}")
