"""`logsam batch`: a cohort from a manifest -> per-case outputs + reports, summary.csv, Dice."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_verbose
from .pipeline_args import add_model_options, check_numbers, pipeline_options

HELP = "a cohort: manifest (CSV / JSON Lines) -> per-case outputs + reports, summary.csv, Dice"


def register(subparsers) -> None:
    parser = subparsers.add_parser("batch", help=HELP, description=HELP + ". Running it again resumes: "
                                   "cases whose outputs match the checksums in their report are kept.")
    parser.add_argument("manifest", type=Path, help="CSV (with a header) or .jsonl: case, volume, text | audio | "
                        "prompt, ground_truth, plane, segmenter")
    parser.add_argument("-o", "--output-dir", type=Path, required=True, metavar="DIR",
                        help="per case <case><format> and <case>.report.json, plus summary.csv")
    parser.add_argument("--format", dest="formats", action="append", metavar="EXT",
                        help="segmentation format(s) per case: .nii.gz (default), .nii, .nrrd, .mha, .seg.nrrd")
    run = parser.add_argument_group("where the cases run")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="worker processes (local) or actors (--ray), each with its own models (default 1)")
    run.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on Ray: a local instance, or the cluster at ADDRESS ('auto', ray://host:10001)")
    run.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                     help="with --ray: GPUs per worker (0: CPU workers)")
    run.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C",
                     help="with --ray or --workers: CPU cores (torch threads) per worker (default 1)")
    run.add_argument("--max-attempts", type=int, default=3, metavar="N",
                     help="tries per case when its worker dies (default 3); a case's own error is not retried")
    speech = parser.add_argument_group("speech (cases with audio)")
    speech.add_argument("--whisper-model", default=None)
    speech.add_argument("--asr-backend", choices=("auto", "openai", "faster"), default="auto")
    speech.add_argument("--language", default=None, help="spoken language, e.g. de (default: detect)")
    add_model_options(parser)
    add_verbose(parser)
    parser.set_defaults(func=run_batch_command)


def run_batch_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..batch.case import BatchSettings
    from ..batch.manifest import read_manifest
    from ..batch.runner import InlinePool, ProcessPool, print_progress, run_batch
    from ..batch.summary import FINISHED
    from ..errors import InputError
    from ..outputs import SEGMENTATION_WRITERS

    check_numbers(args)
    if args.workers < 1 or args.max_attempts < 1:
        raise InputError("--workers and --max-attempts must be 1 or more.")
    formats = tuple(dict.fromkeys(f if f.startswith(".") else "." + f for f in (args.formats or [".nii.gz"])))
    for fmt in formats:
        if fmt.lower() not in SEGMENTATION_WRITERS:
            raise InputError(f"--format {fmt}: use one of {', '.join(SEGMENTATION_WRITERS)}.")
    cases = read_manifest(args.manifest)
    options = pipeline_options(args, whisper_model=args.whisper_model, asr_backend=args.asr_backend,
                               language=args.language)
    from ..pipeline import Pipeline

    Pipeline(options)  # checks the options before any worker starts
    settings = BatchSettings(str(args.output_dir.resolve()), formats, asdict(options))

    if args.ray is not None:
        def make_pool():
            from ..batch.ray_pool import RayPool

            return RayPool(settings, args.workers, args.ray or None, args.gpus_per_worker, args.cpus_per_worker)
        where = f"Ray ({args.ray or 'local instance'}), {args.workers} worker(s)"
    elif args.workers > 1:
        def make_pool():
            pool = ProcessPool(settings, args.workers, max(1, int(args.cpus_per_worker)))
            pool.start()  # models loaded before the first case, so the ETA is the cases'
            return pool
        where = f"{args.workers} local worker processes"
    else:
        def make_pool():
            pool = InlinePool(settings)
            pool.runner.load_models()  # a missing model stops here, in one line, before any case
            return pool
        where = "this process"
    print(f"{len(cases)} case(s) from {args.manifest.name}; running on {where}.", flush=True)
    progress, close = print_progress()
    try:
        result = run_batch(cases, settings, make_pool, progress, args.max_attempts)
    finally:
        close()
    counts = result.counts
    kept = sum(1 for r in result.rows if r["status"] in FINISHED and not r["this_run"])
    print(f"{counts.get('done', 0)} done ({kept} kept from an earlier run), {counts.get('no_finding', 0)} with "
          f"nothing to segment, {counts.get('cross_check_failed', 0)} stopped by the cross-check, "
          f"{counts.get('failed', 0)} failed, {counts.get('not_run', 0)} not run; "
          f"{result.seconds:.1f} s.")
    for row in result.rows:
        if row["status"] == "failed":
            print(f"  {row['case']}: {row['error']}")
    if result.evaluation is not None and result.evaluation.summary["all"].n_positive:
        total = result.evaluation.summary["all"]
        print(f"Dice over {total.n_positive} case(s) with tumor in the ground truth: {100 * total.dice:.2f} %")
    print("Wrote " + ", ".join(str(p) for p in result.written))
    if result.interrupted:
        print("Interrupted: run the same command again to finish the remaining cases.")
        return 130
    return 1 if counts.get("failed") else 0
