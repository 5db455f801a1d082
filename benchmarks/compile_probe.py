"""Does ``torch.compile`` pay off for Grounding DINO here? (Not part of ``make bench``: minutes.)

Times one eager detector call, then compiles the model (inductor, static shapes) and times
the first compiled call (compilation included) and a few more; checks that the compiled
outputs match the eager ones.

    python -m benchmarks.compile_probe [--device cpu|cuda] [--calls 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import log, synchronize
from .pipeline_bench import CAPTION, build_detector


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args(argv)

    detector = build_detector(False, args.device)
    detector.batch_size = 1
    rng = np.random.default_rng(0)
    image = np.stack([rng.integers(0, 256, (256, 256), dtype=np.uint8)] * 3, axis=-1)

    def call() -> tuple[float, tuple]:
        synchronize(args.device)
        start = time.perf_counter()
        out = detector.predict([image], CAPTION)
        synchronize(args.device)
        return time.perf_counter() - start, out

    call()  # warm-up
    eager_s, eager = call()
    log(f"eager: {eager_s:.2f} s per slice")
    detector.model = torch.compile(detector.model, dynamic=False)
    for index in range(args.calls + 1):
        seconds, out = call()
        label = "first compiled call (compiles)" if index == 0 else "compiled call"
        log(f"{label}: {seconds:.2f} s ({eager_s / seconds:.2f}x eager)")
    diff = max(float((a - b).abs().max()) for a, b in zip(out[:2], eager[:2], strict=True))
    log(f"largest difference to eager outputs: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
