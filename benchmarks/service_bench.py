"""The engine service's own cost: `logsam serve` + `EngineClient` against the same call in process.

    python -m benchmarks.service_bench [--json benchmarks/results/service.json] [--repeats 5]

A 256×256×155 volume at 1 mm (float32 .nii.gz, as a scanner export) is segmented in box mode on one
slice, so the model work is small and the same on both sides:

- in process: ``read_volume`` + ``Pipeline.segment_box`` + write ``.nii.gz`` and ``.seg.nrrd`` + report;
- served: ``submit_segment`` (upload) + ``wait`` (queue and the same work on the server) + ``fetch``
  (download of both formats and the report), with a real uvicorn server in a subprocess on 127.0.0.1.

The overhead (served − in process, medians after one warm-up each) is divided by the CPU run of the whole
method on a volume of this size recorded in ``benchmarks/results/cpu.json`` (composed there from measured
per-call costs): a composed ratio, as the README says. The tiny test models do the model work (they are
built here), so no weights are needed and the difference is the transport alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (256, 256, 155)


def _cpu_runs() -> dict[str, float]:
    """The whole-method CPU runs of a 256×256×155 volume recorded by `benchmarks.run` (seconds)."""
    rows = json.loads((ROOT / "benchmarks/results/cpu.json").read_text())["rows"]
    runs = [r for r in rows if r.get("stage") == "pipeline" and r.get("kind") == "composed"]
    first = {}
    for row in runs:  # the 155-slice rows come first, the 24-slice ones after them
        first.setdefault(row["name"], row["median_s"])
    return {"CPU settings": first["LoGSAM CPU settings"],
            "CPU + both speed options": first["LoGSAM CPU + both options"]}


def _start_server(folder: Path, home: Path) -> tuple[subprocess.Popen, str, str]:
    ready, token_file = folder / "ready.json", folder / "token"
    env = {**os.environ, "LOGSAM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "LoGSAMLib.cli", "serve", "--port", "0", "--device", "cpu",
                                "--token-file", str(token_file), "--ready-file", str(ready)], env=env)
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
    return process, json.loads(ready.read_text())["url"], token_file.read_text().strip()


def measure(repeats: int, folder: Path) -> dict[str, Any]:
    import numpy as np

    from LoGSAMLib.outputs import write_report, write_segmentation
    from LoGSAMLib.pipeline import Pipeline, PipelineOptions
    from LoGSAMLib.service.client import EngineClient
    from LoGSAMLib.testing import tiny_models
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.volume import read_volume, write_volume

    home = folder / "models"
    tiny_models.build(home)
    os.environ["LOGSAM_HOME"] = str(home)
    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left", region="frontal")],
                           spacing=(1.0, 1.0, 1.0), size=SHAPE, seed=1)
    volume_file = folder / "t1.nii.gz"
    write_volume(phantom.volume.with_array(phantom.volume.array.astype(np.float32)), volume_file)
    k = SHAPE[2] // 2
    corners = [phantom.volume.ijk_to_ras_matrix() @ np.array([x, y, k, 1.0]) for x, y in ((100, 100), (140, 140))]
    box_lps = tuple((-c[0], -c[1], c[2]) for c in corners)
    options = {"segmenter": "medsam"}
    outputs = [folder / "local.nii.gz", folder / "local.seg.nrrd"]

    pipe = Pipeline(PipelineOptions(device="cpu", **options))

    def local() -> None:
        volume = read_volume(volume_file)
        result = pipe.segment_box(volume, box_lps, "glioma")
        for path in outputs:
            write_segmentation(result.segmentation, path)
        write_report({"input": str(volume_file), **result.report}, folder / "local.report.json")

    process, url, token = _start_server(folder, home)
    try:
        client = EngineClient(url, token, timeout=120)
        parts: list[dict[str, float]] = []

        def served() -> None:
            t0 = time.perf_counter()
            job = client.submit_segment(volume_file, box_lps=box_lps, label="glioma", options=options)
            t1 = time.perf_counter()
            client.wait(job)
            t2 = time.perf_counter()
            client.fetch(job, [folder / "served.nii.gz", folder / "served.seg.nrrd"], folder / "served.report.json")
            t3 = time.perf_counter()
            parts.append({"upload_s": t1 - t0, "queue_and_job_s": t2 - t1, "fetch_s": t3 - t2})

        times: dict[str, list[float]] = {"in_process": [], "served": []}
        for n in range(repeats + 1):  # the first round warms the models on both sides
            for name, fn in (("in_process", local), ("served", served)):
                start = time.perf_counter()
                fn()
                if n:
                    times[name].append(time.perf_counter() - start)
        parts = parts[1:]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    local_s, served_s = statistics.median(times["in_process"]), statistics.median(times["served"])
    overhead = served_s - local_s
    cpu = _cpu_runs()
    return {
        "volume": {"shape_ijk": list(SHAPE), "dtype": "float32",
                   "file_mb": round(volume_file.stat().st_size / 2**20, 1)},
        "repeats": repeats,
        "in_process_s": round(local_s, 3), "served_s": round(served_s, 3), "overhead_s": round(overhead, 3),
        "served_parts_s": {key: round(statistics.median(p[key] for p in parts), 3) for key in parts[0]},
        "runs_s": {name: [round(t, 3) for t in values] for name, values in times.items()},
        "cpu_run_s": cpu,
        "overhead_vs_cpu_run": {name: round(overhead / seconds, 5) for name, seconds in cpu.items()},
        "kind": "composed: overhead measured here / CPU run recorded in benchmarks/results/cpu.json",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="logsam-service-bench-") as tmp:
        result = measure(args.repeats, Path(tmp))
    from .common import load_average

    result["load_average_after"] = load_average()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
