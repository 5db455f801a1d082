"""Cohort batches: throughput of `logsam batch` locally (1 worker, 2 worker processes) and on Ray
(2 actors) over the same phantom set in one run, and the model-load time a per-case process pays.

    python -m benchmarks.batch_bench [--cases 12] [--json benchmarks/results/batch.json]

The cases run end to end through the real batch code (manifest -> CaseRunner -> outputs + report
+ summary.csv) on the tiny test models (no trained weights can be downloaded here), on small MNI152
phantom slabs, so a case costs seconds; what is measured is the batch's machinery and how it scales
over workers. The per-case process cost is measured twice in fresh processes: with the tiny models,
and with the real-size architectures (Grounding DINO Swin-T + BERT-base, random weights, and the real
LiteMedSAM), which is what `logsam run` per volume would pay before its first slice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def make_cohort(folder: Path, count: int) -> Path:
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom, write_phantom

    rows = []
    for n in range(count):
        phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=14.0, side="left", region="frontal")],
                               spacing=(8.0, 8.0, 8.0), size=(23, 27, 3), seed=n)
        image, mask = write_phantom(phantom, folder, stem=f"subject{n:03d}")
        rows.append({"case": f"case{n:03d}", "volume": image.name, "ground_truth": mask.name,
                     "text": "Enhancing mass in the left frontal lobe, consistent with glioma."})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def time_batch(name: str, manifest: Path, out: Path, make_pool_for) -> dict[str, Any]:
    from LoGSAMLib.batch.case import BatchSettings
    from LoGSAMLib.batch.manifest import read_manifest
    from LoGSAMLib.batch.runner import run_batch
    from LoGSAMLib.pipeline import PipelineOptions

    cases = read_manifest(manifest)
    options = PipelineOptions(segmenter="medsam", device="cpu", detector_size=128)
    from dataclasses import asdict

    settings = BatchSettings(str(out), (".nii.gz",), asdict(options))
    startup: list[float] = []

    def make_pool():
        started = time.perf_counter()
        pool = make_pool_for(settings)
        startup.append(time.perf_counter() - started)
        return pool

    started = time.perf_counter()
    result = run_batch(cases, settings, make_pool)
    total = time.perf_counter() - started
    done = result.counts.get("done", 0)
    compute = max(1e-9, total - startup[0])
    row = {"name": name, "cases": len(cases), "done": done, "total_s": round(total, 2),
           "startup_s": round(startup[0], 2), "cases_per_min": round(60 * done / total, 2),
           "cases_per_min_after_startup": round(60 * done / compute, 2),
           "mean_case_s": round(sum(r["total_s"] or 0 for r in result.rows) / max(1, done), 3),
           # the batch's own cost per case: reading, the output transaction, checksums, the report again
           "mean_overhead_s": round(sum((r["total_s"] or 0) - (r["pipeline_s"] or 0) for r in result.rows)
                                    / max(1, done), 3)}
    print(json.dumps(row), flush=True)
    return row


def per_case_process(real_size: bool, home: Path) -> dict[str, Any]:
    """A fresh Python that imports the engine and loads the models, as one `logsam run` per case would."""
    code = (
        "import time, json; t0 = time.perf_counter()\n"
        "import torch; torch.set_num_threads(2)\n"
        "from LoGSAMLib.pipeline import Pipeline, PipelineOptions\n"
        "t1 = time.perf_counter()\n"
        + ("from benchmarks.pipeline_bench import build_detector, build_litemedsam\n"
           "build_detector(False, 'cpu'); build_litemedsam(False, 'cpu')\n" if real_size else
           "p = Pipeline(PipelineOptions(segmenter='medsam', device='cpu')); p.detector; p.segmenter\n")
        + "print(json.dumps({'imports_s': t1 - t0, 'models_s': time.perf_counter() - t1}))\n"
    )
    env = {**os.environ, "LOGSAM_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                                                 os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout
    wall = time.perf_counter() - started
    parts = json.loads(output.strip().splitlines()[-1])
    row = {"name": "per-case process, " + ("real-size models" if real_size else "tiny models"),
           "process_s": round(wall, 2), "imports_s": round(parts["imports_s"], 2),
           "models_s": round(parts["models_s"], 2)}
    print(json.dumps(row), flush=True)
    return row


def _inline(settings):
    """This process as the one worker, with one torch thread like each worker below (the same
    arithmetic, and no oversubscription of the cores); models loaded here, so startup counts them."""
    import torch

    from LoGSAMLib.batch.runner import InlinePool

    torch.set_num_threads(1)
    pool = InlinePool(settings)
    pool.runner.load_models()
    return pool


def _processes(settings):
    from LoGSAMLib.batch.runner import ProcessPool

    pool = ProcessPool(settings, 2, 1)
    pool.start()
    return pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-real-size", action="store_true", help="skip the real-size load (needs ~3 GB)")
    args = parser.parse_args(argv)

    from LoGSAMLib.testing import tiny_models

    work = Path(tempfile.mkdtemp(prefix="logsam-batch-bench-"))
    home = work / "tiny-models"
    tiny_models.build(home)
    os.environ["LOGSAM_HOME"] = str(home)
    manifest = make_cohort(work / "cohort", args.cases)
    load = os.getloadavg()[0]
    rows = [
        time_batch("local, 1 worker (this process, 1 torch thread)", manifest, work / "out-local1", _inline),
        time_batch("local, 2 worker processes (1 thread each)", manifest, work / "out-local2",
                   _processes),
    ]
    import ray

    from LoGSAMLib.batch.ray_pool import RayPool

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows.append(time_batch("Ray, 2 actors (1 CPU each)", manifest, work / "out-ray2",
                           lambda s: RayPool(s, 2, cpus_per_worker=1.0)))
    ray.shutdown()
    same = all((work / "out-local1" / f"case{n:03d}.nii.gz").read_bytes()
               == (work / d / f"case{n:03d}.nii.gz").read_bytes()
               for n in range(args.cases) for d in ("out-local2", "out-ray2"))
    loads = [per_case_process(False, home)]
    if not args.skip_real_size:
        loads.append(per_case_process(True, home))
    base = rows[0]["cases_per_min"]
    for row in rows:
        row["ratio_vs_local1"] = round(row["cases_per_min"] / base, 2)
    result = {"created": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "load_average_before": load,
              "load_average_after": os.getloadavg()[0], "identical_outputs": same, "batch": rows,
              "per_case_process": loads}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
