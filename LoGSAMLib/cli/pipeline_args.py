"""Options shared by `logsam run` and `logsam segment`, and writing their outputs."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

SEGMENTERS = ("medsam", "litemedsam")
PLANES = ("axial", "coronal", "sagittal")


def add_input_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volume", type=Path, help="MRI: .nii/.nii.gz/.nrrd/.mha, a DICOM folder, or a 2D PNG/JPEG")
    parser.add_argument("-o", "--output", type=Path, action="append", required=True, metavar="OUT",
                        help="segmentation file; format by extension: .nii.gz .nii .nrrd .mha (label map), "
                             ".seg.nrrd (Slicer segmentation) or .dcm (DICOM SEG; needs a DICOM input). "
                             "Repeat for several formats.")
    parser.add_argument("--dicom-seg", type=Path, metavar="DIR",
                        help="also write a DICOM SEG of the DICOM input series into DIR (<output name>.seg.dcm)")
    parser.add_argument("--report", type=Path, metavar="R.json",
                        help="JSON report (default: next to the first output, <name>.report.json)")
    parser.add_argument("--volume-index", type=int, default=None, metavar="N",
                        help="which volume of a 4D / multi-component image to use")
    parser.add_argument("--series", default=None, metavar="UID",
                        help="which DICOM series of a folder holding several (the error lists them)")
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
    group.add_argument("--runtime", choices=("auto", "torch", "onnxruntime", "openvino"), default="auto",
                       help="CPU inference runtime, converted once per model and input size and cached "
                            "(default auto: OpenVINO for the segmenter's image encoder, PyTorch for the "
                            "detector; a named runtime runs both; a GPU always runs PyTorch)")
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
        runtime=args.runtime,
        adapter=adapter, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
        search=args.search, coarse_step_mm=args.coarse_step_mm, batch_size=args.batch_size,
        detector_size=args.detector_size, detect_every=args.detect_every,
        location_prior=not args.no_location_prior, box_prompts=args.box_prompts, **extra,
    )


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse numeric options that make no sense, before anything is loaded (one line each)."""
    from ..errors import InputError

    def bad(option: str, value: Any, rule: str) -> InputError:
        return InputError(f"{option} {value} is not allowed: {rule}.")

    step = getattr(args, "coarse_step_mm", None)
    if step is not None and not (math.isfinite(step) and step > 0):
        raise bad("--coarse-step-mm", step, "give a distance in mm greater than 0 (default 6)")
    if getattr(args, "batch_size", None) is not None and args.batch_size < 1:
        raise bad("--batch-size", args.batch_size, "give 1 or more slices per call")
    if getattr(args, "detect_every", 1) < 1:
        raise bad("--detect-every", args.detect_every, "give 1 (every slice) or more")
    for option in ("box_threshold", "text_threshold"):
        value = getattr(args, option, None)
        if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise bad("--" + option.replace("_", "-"), value, "give a score between 0 and 1")
    if getattr(args, "volume_index", None) is not None and args.volume_index < 0:
        raise bad("--volume-index", args.volume_index, "volumes are numbered from 0")
    box = getattr(args, "box_ras", None)
    if box is not None:
        if not all(math.isfinite(v) for v in box):
            raise InputError("--box-ras needs six finite numbers (R1 A1 S1 R2 A2 S2, in mm).")
        flat = [axis for axis, n in zip("RAS", range(3), strict=True) if box[n] == box[n + 3]]
        if len(flat) > 1:
            raise InputError(f"--box-ras has zero size along {' and '.join(flat)}: it is a line or a point, "
                             "not a box; give two opposite corners of the tumor's box.")


def all_outputs(args: argparse.Namespace) -> list[Path]:
    """The -o files and, with --dicom-seg DIR, DIR/<first output's name>.seg.dcm."""
    if not getattr(args, "dicom_seg", None):
        return list(args.output)
    from ..outputs import default_report_path

    stem = default_report_path(args.output[0]).name.removesuffix(".report.json")
    return [*args.output, args.dicom_seg / f"{stem}.seg.dcm"]


def check_dicom_source(args: argparse.Namespace, volume) -> None:
    """Fail before any model runs when a DICOM SEG is asked of an image not read from DICOM."""
    from ..errors import InputError

    if any(p.name.lower().endswith(".dcm") for p in all_outputs(args)) and not volume.source_files:
        raise InputError(f"DICOM SEG needs the source DICOM series, and {args.volume.name} is not DICOM; "
                         "give the DICOM folder as the input, or write .nii.gz / .seg.nrrd instead.")


def output_plan(args: argparse.Namespace):
    """Check every output against the inputs and each other before any work (an OutputPlan)."""
    from ..outputs import OutputPlan
    from ..volume import input_files

    inputs = input_files(args.volume)
    if getattr(args, "audio", None) is not None:
        inputs.append(args.audio)
    return OutputPlan.build(all_outputs(args), args.report, inputs)


def prepare(args: argparse.Namespace):
    """Everything checked before models load: numbers, outputs, the pipeline options. Returns
    ``(plan, pipeline)``; the pipeline has not loaded anything yet."""
    from ..pipeline import Pipeline

    check_numbers(args)
    plan = output_plan(args)
    extra = {"whisper_model": args.whisper_model, "asr_backend": args.asr_backend,
             "language": args.language} if hasattr(args, "whisper_model") else {}
    return plan, Pipeline(pipeline_options(args, **extra))


def read_input(args: argparse.Namespace):
    from ..volume import read_volume

    return read_volume(args.volume, component=args.volume_index, series_uid=args.series)


def write_results(plan, segmentation, report: dict) -> None:
    """All outputs and the report as one transaction (all or none)."""
    report["outputs"] = [str(p) for p in plan.segmentations]
    plan.write(segmentation, report)


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
    if report.get("lesions"):
        from ..report_line import describe_lesions

        lines += ["Lesions:", describe_lesions(report["lesions"])]
    if report.get("report_lines"):
        lines += ["Report lines:", *(f"  {line}" for line in report["report_lines"])]
    return "\n".join(lines) if lines else "  nothing was segmented"
