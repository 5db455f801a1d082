"""The one benchmark runner: every stage and the whole pipeline, on this machine, in one run.

    python -m benchmarks.run [--quick] [--json OUT] [--only STAGE ...] [--device cpu|cuda|auto]

``--quick`` runs tiny models on small phantoms (seconds; a smoke test that needs no weights and
no network). Without it the real-size architectures run (random weights where the real ones
are absent: same compute, meaningless outputs). Each stage module ``benchmarks/<stage>_bench.py``
has ``run(...) -> list[dict]``; a missing or failing stage is reported in the table, and the
other stages still run. Speed-ups are ratios against the baseline measured in this run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import time
import traceback
from typing import Any

STAGES = ("asr", "detection", "segmentation", "runtime", "pipeline", "phantom")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and volumes: a smoke run in seconds")
    parser.add_argument("--json", metavar="OUT", help="also write every row, the machine and the targets here")
    parser.add_argument("--only", nargs="+", choices=STAGES, metavar="STAGE",
                        help=f"run only these stages ({', '.join(STAGES)})")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--show", metavar="JSON", help="print the table of a saved run (no measuring)")
    return parser.parse_args(argv)


def show(path: str, markdown: bool) -> int:
    """Print the table and the targets of a run saved with --json."""
    import json

    from .common import print_table

    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    machine = saved["machine"]
    print(f"{saved['command']} ({saved['created']}, {saved['duration_s'] / 60:.0f} min): {machine['cpu']}, "
          f"{machine['cores_usable']} cores, torch {machine.get('torch')} with {machine.get('torch_threads')} threads, "
          f"load {machine['load_average_1_5_15']} -> {saved.get('load_average_after')}")
    print_table([r for r in saved["rows"] if r.get("kind") != "summary"], markdown=markdown)
    for t in saved.get("targets", []):
        print(f"- [{ {True: 'MET', False: 'NOT MET', None: 'option'}[t.get('met')] }] {t['target']}: {t['value']}")
    return 0


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but no CUDA GPU is available.")
    return "cuda" if device.startswith("cuda") else "cpu"


def run_stage(stage: str, quick: bool, device: str) -> list[dict[str, Any]]:
    """Import ``benchmarks.<stage>_bench`` and call its ``run``; failures become rows."""
    from .common import log

    module_name = f"{__package__}.{stage}_bench"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return [{"stage": stage, "name": f"{stage}_bench", "status": "missing",
                     "note": f"benchmarks/{stage}_bench.py does not exist"}]
        return [_failure(stage, error)]
    except Exception as error:  # a broken module must not stop the other stages
        return [_failure(stage, error)]
    run = getattr(module, "run", None)
    if run is None:
        return [{"stage": stage, "name": f"{stage}_bench", "status": "failed", "note": "no run() function"}]
    offered = {"quick": quick, "device": device}
    params = inspect.signature(run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
    started = time.perf_counter()
    log(f"stage {stage}: start")
    try:
        rows = list(run(**kwargs))
    except Exception as error:
        return [_failure(stage, error)]
    log(f"stage {stage}: {time.perf_counter() - started:.0f} s, {len(rows)} rows")
    for r in rows:
        r.setdefault("stage", stage)
        r.setdefault("status", "ok")
    return rows


def _failure(stage: str, error: BaseException) -> dict[str, Any]:
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    return {"stage": stage, "name": f"{stage}_bench", "status": "failed",
            "note": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        return show(args.show, args.markdown)
    # Benchmarks never download: every model is built locally (or ships in a package).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from .common import busy_processes, load_average, log, machine_info, print_table, write_json

    device = resolve_device(args.device)
    if args.quick:  # a smoke run: one thread keeps it cheap on a shared machine
        import torch

        torch.set_num_threads(1)
    stages = [s for s in STAGES if s in (args.only or STAGES)]
    machine = machine_info(device)
    busy_before = busy_processes()
    started = time.time()
    log(f"{'quick' if args.quick else 'full'} run on {device}: {machine['cpu']}, {machine['cores_usable']} cores, "
        f"torch {machine.get('torch')} ({machine.get('torch_threads')} threads), load {machine['load_average_1_5_15']}")
    # The whole pipeline runs first (the longest and the one the targets are about) and speech
    # last: the large Whisper models leave the process holding ~15 GB of freed heap, which
    # would starve MedSAM at batch 4. The table shows the stages in their usual order.
    first_last = {"pipeline": 0, "asr": 2}
    order = sorted(stages, key=lambda s: (first_last.get(s, 1), STAGES.index(s)))
    results = {stage: run_stage(stage, args.quick, device) for stage in order}
    rows = [r for stage in stages for r in results[stage]]
    elapsed = time.time() - started

    targets: list[dict[str, Any]] = []
    if "pipeline" in stages:
        try:
            from .pipeline_bench import targets as pipeline_targets

            targets = pipeline_targets(rows)
        except Exception as error:  # the table matters more than the summary
            log(f"targets: {error}")
    load_after = load_average()
    busy_after = busy_processes()
    table_rows = [r for r in rows if r.get("kind") != "summary"]

    print(f"\nLoGSAM benchmark ({'quick smoke run, tiny models' if args.quick else 'real-size models'}), "
          f"device {device}, {elapsed / 60:.1f} min")
    print(f"machine: {machine['cpu']}; {machine['cores_usable']} usable cores; torch {machine.get('torch')} "
          f"with {machine.get('torch_threads')} threads" + (f"; GPU {machine['gpu']}" if machine.get("gpu") else ""))
    print(f"load average before {machine['load_average_1_5_15']}, after {load_after}"
          + (f"; other busy processes: {', '.join((busy_before + busy_after)[:8])}" if busy_before or busy_after
             else ""))
    if not args.quick:
        print("weights: random in the real-size architectures (same compute as the trained models), except "
              "LiteMedSAM (real weights)")
    print()
    print_table(table_rows, markdown=args.markdown)
    if targets:
        print("\ntargets (issue 8):")
        for t in targets:
            verdict = {True: "MET", False: "NOT MET", None: "option"}[t.get("met")]
            print(f"  [{verdict}] {t['target']}: {t['value']}")
    failed = [r for r in rows if r.get("status") in ("failed", "missing")]
    if failed:
        print(f"\n{len(failed)} stage(s) missing or failed: "
              + ", ".join(f"{r['stage']} ({r['status']})" for r in failed))
    if args.json:
        payload = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                   "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "quick": args.quick, "device": device, "duration_s": round(elapsed, 1), "machine": machine,
                   "load_average_after": load_after, "busy_processes": sorted(set(busy_before + busy_after)),
                   "targets": targets, "rows": rows}
        log(f"wrote {write_json(args.json, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
