"""Options shared by `logsam run` and `logsam segment`, and writing their outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

SEGMENTERS = ("medsam", "litemedsam")
PLANES = ("axial", "coronal", "sagittal")


def add_input_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volume", type=Path, help="MRI: .nii/.nii.gz/.nrrd/.mha, a DICOM folder, or a 2D PNG/JPEG")
    parser.add_argument("-o", "--output", type=Path, action="append", required=True, metavar="OUT",
                        help="segmentation file; format by extension: .nii.gz .nii .nrrd .mha (label map) "
                             "or .seg.nrrd (Slicer segmentation). Repeat for several formats.")
    parser.add_argument("--report", type=Path, metavar="R.json",
                        help="JSON report (default: next to the first output, <name>.report.json)")
    parser.add_argument("--volume-index", type=int, default=None, metavar="N",
                        help="which volume of a 4D / multi-component image to use")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models and search")
    group.add_argument("--segmenter", choices=SEGMENTERS, default=None,
                       help="default: medsam on a GPU, litemedsam (about 10x faster) on a CPU")
    group.add_argument("--plane", choices=PLANES, default="axial",
                       help="slice along the acquired axis closest to this plane (default axial)")
    group.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    group.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default=None,
                       help="default: fp16 on CUDA, fp32 on CPU")
    group.add_argument("--adapter", default="logsam-lora-dino",
                       help="LoRA adapter: registry id, .pth file, PEFT folder, or 'none' for the base detector")
    group.add_argument("--box-threshold", type=float, default=None)
    group.add_argument("--text-threshold", type=float, default=None)
    group.add_argument("--search", choices=("coarse", "dense"), default="coarse",
                       help="coarse-to-fine slice search (default) or every slice")
    group.add_argument("--coarse-step-mm", type=float, default=6.0,
                       help="distance between slices of the coarse pass (default 6 mm)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="slices per detector/segmenter call (default: 4 on a GPU, 1 on a CPU, where "
                            "batches are no faster)")
    speed = parser.add_argument_group("speed options that change accuracy (never defaults)")
    speed.add_argument("--detector-size", type=int, default=None, metavar="PX",
                       help="detector input's shorter side in pixels (default 800, as trained; 512 is ~2.4x "
                            "faster on a CPU and may miss small lesions)")
    speed.add_argument("--detect-every", type=int, default=1, metavar="N",
                       help="run the detector on every Nth slice only and interpolate the boxes between")
    group.add_argument("--no-location-prior", action="store_true",
                       help="keep detections on both sides even when the dictation names one")
    group.add_argument("--box-prompts", choices=("measured", "plain"), default="measured",
                       help="measured (default): measured box margin, core-only guard, and in box mode prompts "
                            "that follow the lesion inside the box; plain: every box as given")


def pipeline_options(args: argparse.Namespace, **extra: Any):
    from ..pipeline import PipelineOptions

    adapter = None if str(args.adapter).lower() == "none" else args.adapter
    return PipelineOptions(
        segmenter=args.segmenter, plane=args.plane, device=args.device, precision=args.precision,
        adapter=adapter, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
        search=args.search, coarse_step_mm=args.coarse_step_mm, batch_size=args.batch_size,
        detector_size=args.detector_size, detect_every=args.detect_every,
        location_prior=not args.no_location_prior, box_prompts=args.box_prompts, **extra,
    )


def check_outputs(paths: list[Path]) -> None:
    """Fail before any model runs when an output extension is unsupported."""
    from ..errors import InputError
    from ..outputs import SEGMENTATION_SUFFIXES

    for path in paths:
        name = path.name.lower()
        if not any(name.endswith(ext) for ext in SEGMENTATION_SUFFIXES):
            raise InputError(f"Cannot write {path}: use one of {', '.join(SEGMENTATION_SUFFIXES)}.")


def report_path(args: argparse.Namespace) -> Path:
    if args.report:
        return args.report
    first = args.output[0]
    name = first.name
    for ext in (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return first.with_name(name + ".report.json")


def write_results(args: argparse.Namespace, segmentation, report: dict) -> None:
    from ..outputs import write_report, write_segmentation

    report["outputs"] = [str(p) for p in args.output]
    for path in args.output:
        write_segmentation(segmentation, path)
    write_report(report, report_path(args))


def info(args: argparse.Namespace, text: str) -> None:
    """Human-readable lines: stdout normally, stderr when stdout carries JSON."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def summarize(report: dict) -> str:
    lines = []
    for label, stats in (report.get("statistics") or {}).items():
        if not stats["voxels"]:
            lines.append(f"  {label}: nothing segmented")
            continue
        first, last = stats["slices"]
        extent = " x ".join(f"{v:.0f}" for v in stats["extent_mm"])
        lines.append(f"  {label}: {stats['volume_ml']:.2f} mL, slices {first}-{last}, extent {extent} mm")
    for warning in report.get("warnings", []):
        lines.append(f"  warning: {warning}")
    return "\n".join(lines) if lines else "  nothing was segmented"
