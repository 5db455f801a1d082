"""CPU runtimes (ONNX Runtime, OpenVINO) against PyTorch eager fp32: speed and equality, one run.

Real-size models: Grounding DINO Swin-T + BERT-base (random weights) on a 256x256 slice at 800 px,
batch 1, caption "glioma ."; MedSAM ViT-B (random weights) and LiteMedSAM (real weights) image
encoders on one slice. Each runtime wraps the same loaded torch model (``LoGSAMLib.runtime``), and
the three variants are timed interleaved (A B C, A B C) so that the shared machine's drift hits all
alike. The first call of a runtime (conversion + compilation, cached in a temporary folder here)
is reported separately.

Equality, where top-k ties cannot hide a difference:
- detector: every query's token probabilities and box in query order, and matched to the nearest
  eager query (random weights give many equal-score proposals whose order a backend may break
  differently; such queries are identical, so the matched difference shows what changed); and
  the kept boxes (0.5 px, scores 1e-3) at the default thresholds and at 0.05;
- encoders: the embeddings, then the masks decoded from them for three boxes (identical or Dice).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import RANDOM_WEIGHTS, load_average, log, measure_many, ratio, row

RUNTIMES = ("onnxruntime", "openvino")
CAPTION = "glioma ."
SLICE = (256, 256)
BOXES = np.array([[60.0, 50.0, 150.0, 140.0], [100.0, 120.0, 200.0, 230.0], [20.0, 20.0, 240.0, 240.0]])


def _slice(seed: int = 0) -> np.ndarray:
    """A smooth uint8 slice with a bright blob (random noise would make every box a tie)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: SLICE[0], : SLICE[1]]
    image = 80 + 60 * np.exp(-((x - 110) ** 2 + (y - 95) ** 2) / 900.0) + 30 * np.sin(x / 23.0) * np.cos(y / 17.0)
    return np.clip(image + rng.normal(0, 4, SLICE), 0, 255).astype(np.uint8)


def _timing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("median_s", "min_s", "max_s", "runs_s", "peak_rss_mb") if k in d}


def detector_equality(reference: Any, expected: tuple[Any, Any, Any], other: Any, image: np.ndarray) -> dict[str, Any]:
    """``expected``: ``reference.predict([image], CAPTION)``."""
    probs_ref, boxes_ref, tokens = expected
    probs, boxes, _ = other.predict([image], CAPTION)
    ref = np.concatenate([probs_ref[0].numpy(), boxes_ref[0].numpy()], axis=1)
    out = np.concatenate([probs[0].numpy(), boxes[0].numpy()], axis=1)
    in_order = np.abs(ref - out).max(axis=1)
    nearest = np.abs(ref[:, None, :] - out[None, :, :]).max(axis=2).min(axis=1)
    kept = {}
    for name, box_t, text_t in (("default", reference.box_threshold, reference.text_threshold), ("0.05", 0.05, 0.05)):
        # what detect() returns, from the same outputs
        a = reference._boxes(probs_ref[0], boxes_ref[0], tokens, image.shape[:2], box_t, text_t)
        b = reference._boxes(probs[0], boxes[0], tokens, image.shape[:2], box_t, text_t)
        same = len(a) == len(b) and all(
            x.label == y.label and abs(x.score - y.score) <= 1e-3
            and np.abs(x.as_array() - y.as_array()).max() <= 0.5 for x, y in zip(a, b, strict=True))
        kept[name] = {"boxes": len(a), "boxes_runtime": len(b), "equal": bool(same)}
    return {"queries": len(ref), "queries_differing_in_order": int((in_order > 1e-3).sum()),
            "max_diff_in_order": float(in_order.max()), "max_diff_matched": float(nearest.max()),
            "kept_boxes": kept, "tokens": int(tokens.input_ids.shape[1])}


def encoder_equality(reference: Any, other: Any, image: np.ndarray) -> dict[str, Any]:
    import torch

    rgb = np.repeat(image[..., None], 3, axis=2)
    batch = torch.from_numpy(reference.preprocess(rgb)[0][None])
    with torch.inference_mode():
        expected, actual = reference.model.image_encoder(batch), other.encode(batch)
    a = reference.probabilities(image, BOXES)
    b = other.probabilities(image, BOXES)
    dice = [float(2 * np.logical_and(x > 0.5, y > 0.5).sum() / max(1, (x > 0.5).sum() + (y > 0.5).sum()))
            for x, y in zip(a, b, strict=True)]
    return {"embedding_max_diff": float((expected - actual).abs().max()),
            "embedding_max_abs": float(expected.abs().max()),
            "probability_max_diff": float(np.abs(a - b).max()),
            "masks_identical": int(sum(np.array_equal(x > 0.5, y > 0.5) for x, y in zip(a, b, strict=True))),
            "masks": len(BOXES), "min_dice": min(dice)}


def _first_call(fn: Any) -> float:
    import time

    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _stage_rows(stage: str, label: str, fns: dict[str, Any], first: dict[str, float], equal: dict[str, Any],
                repeats: int, note: str, weights: str) -> list[dict[str, Any]]:
    log(f"runtime: timing {label} ({repeats} interleaved rounds)")
    stats = measure_many(fns, repeats=repeats, warmup=1)
    base = stats["torch"]["median_s"]
    rows = []
    for name, d in stats.items():
        extra = {} if name == "torch" else {"first_call_s": round(first[name], 1), "equality": equal[name]}
        rows.append(row(stage, f"{label} {'PyTorch eager fp32' if name == 'torch' else name + ' fp32'}",
                        unit="slice", kind="measured", weights=weights, **_timing(d), ratio=ratio(base, d["median_s"]),
                        vs=f"{label} PyTorch eager fp32", load_average=load_average(), note=note, **extra))
    return rows


def run(quick: bool = False, device: str = "cpu", repeats: int = 3, cache: str | None = None) -> list[dict[str, Any]]:
    """Rows per model: PyTorch eager, then each runtime (ratio against eager, same run).

    ``cache``: keep the converted graphs in this folder (a rerun then skips the conversions:
    the random weights are seeded, so the same key means the same weights); default: a
    temporary folder, removed at the end.
    """
    if device != "cpu":
        return [row("runtime", "CPU runtimes", status="skipped",
                    note="on a GPU the models stay on PyTorch (LoGSAMLib.runtime.choose_runtime)")]
    import torch

    from LoGSAMLib.runtime.wrappers import RuntimeDetector, RuntimeEncoder

    from .pipeline_bench import build_detector, build_litemedsam, build_medsam

    root = Path(cache) if cache else Path(tempfile.mkdtemp(prefix="logsam-bench-runtime-"))
    image = _slice()
    weights = "tiny" if quick else "random"  # also in the cache keys: tiny and real graphs never mix
    rows: list[dict[str, Any]] = []
    try:
        detector = build_detector(quick, "cpu")
        detector.batch_size = 1
        if quick:
            detector.short_side, detector.max_side = 128, 256
        variants = {"torch": detector}
        for runtime in RUNTIMES:
            other = copy.copy(detector)
            other.run_model = RuntimeDetector(detector.model, runtime, f"bench-{weights}-seed0", root=root)
            variants[runtime] = other
        log("runtime: converting Grounding DINO (real size: minutes)")
        first = {name: _first_call(lambda d=d: d.detect([image], CAPTION)) for name, d in variants.items()
                 if name != "torch"}
        expected = detector.predict([image], CAPTION)
        equal = {name: detector_equality(detector, expected, d, image) for name, d in variants.items()
                 if name != "torch"}
        fns = {name: (lambda d=d: d.detect([image], CAPTION)) for name, d in variants.items()}
        rows += _stage_rows("runtime", "Grounding DINO Swin-T b1", fns, first, equal, repeats,
                            f"{SLICE[0]}x{SLICE[1]} slice at {detector.short_side} px, {torch.get_num_threads()} "
                            "threads; " + ("tiny model" if quick else RANDOM_WEIGHTS), weights)
        del variants, detector, fns
        for label, build, weights in (("LiteMedSAM encoder", build_litemedsam, "real"),
                                      ("MedSAM ViT-B encoder", build_medsam, "random")):
            segmenter = build(quick, "cpu")
            model = "litemedsam" if "Lite" in label and not quick else "medsam"
            variants = {"torch": segmenter}
            for runtime in RUNTIMES:
                other = copy.copy(segmenter)
                other.encode = RuntimeEncoder(segmenter.model.image_encoder, model, runtime,
                                              f"bench-{'tiny' if quick else weights}-{label}", root=root)
                variants[runtime] = other
            rgb = np.repeat(image[..., None], 3, axis=2)
            batch = torch.from_numpy(segmenter.preprocess(rgb)[0][None])

            def encode(s: Any = None, b: Any = batch) -> Any:
                with torch.inference_mode():
                    return s.encode(b)

            first = {name: _first_call(lambda s=s: encode(s)) for name, s in variants.items() if name != "torch"}
            equal = {name: encoder_equality(segmenter, s, image) for name, s in variants.items() if name != "torch"}
            fns = {name: (lambda s=s: encode(s)) for name, s in variants.items()}
            rows += _stage_rows("runtime", label, fns, first, equal, repeats,
                                f"image encoder only, batch 1, {torch.get_num_threads()} threads; "
                                + ("tiny model" if quick else RANDOM_WEIGHTS if weights == "random"
                                   else "real weights"), "tiny" if quick else weights)
            del variants, segmenter, fns
    finally:
        if not cache:
            shutil.rmtree(root, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import argparse
    import json

    from .common import print_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--cache", help="keep the converted graphs here (reruns skip the conversions)")
    args = parser.parse_args()
    result = run(args.quick, "cpu", args.repeats, args.cache)
    print_table(result)
    for r in result:
        print(r["name"], f"{r.get('median_s', 0):.3f} s", f"ratio {r.get('ratio')}", f"first {r.get('first_call_s')}",
              json.dumps(r.get("equality")))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
