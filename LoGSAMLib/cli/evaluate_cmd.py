"""`logsam evaluate`: score predictions against ground truth (BRISC folder or 3D label maps)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import SUPPORTED_CLASSES
from ..errors import InputError, NotBuiltError
from .common import add_verbose, print_json, terminal_progress

HELP = "score predictions against ground truth (BRISC folder or 3D label maps)"

EPILOG = """\
modes:
  logsam evaluate --brisc DIR [--split test] [--limit N] [--segmenter litemedsam]
      run the pipeline on every BRISC 2025 image, prompted with the class in its file name
  logsam evaluate --predictions PRED_DIR --ground-truth GT_DIR
      score saved masks (PNG) or label maps (.nii.gz/.nrrd/.mha) of any tool, matched by name
  logsam evaluate --volumes IMAGES_DIR --labels LABELS_DIR --prompt glioma
      run the 3D pipeline on volume/label pairs (adds HD95 and volume error)
  logsam evaluate --detector-only (--brisc DIR | --coco JSON --images DIR) [--adapter ID|PATH]
      detector recall and AP at IoU 0.5 per class, and their means
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help=HELP, description=HELP, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--brisc", metavar="DIR", help="BRISC 2025 folder (images + masks, class in the file name)")
    data.add_argument("--split", choices=("train", "test", "all"), default="test", help="BRISC split (default: test)")
    data.add_argument("--predictions", metavar="PRED_DIR", help="folder of saved predictions")
    data.add_argument("--ground-truth", metavar="GT_DIR", help="folder of ground-truth masks or label maps")
    data.add_argument("--volumes", metavar="IMAGES_DIR", help="folder of 3D images")
    data.add_argument("--labels", metavar="LABELS_DIR", help="folder of 3D label maps named like the images")
    data.add_argument("--coco", metavar="JSON", help="COCO detection file (with --detector-only)")
    data.add_argument("--images", metavar="DIR", help="image folder of the COCO file")
    data.add_argument("--limit", type=int, metavar="N", help="evaluate N cases only, spread over the classes")
    data.add_argument("--include-negatives", action="store_true",
                      help="also run BRISC no-tumor images (with every class prompt) and report false positives")
    model = parser.add_argument_group("model")
    model.add_argument("--detector-only", action="store_true", help="measure the detector's recall and AP only")
    model.add_argument("--prompt", choices=SUPPORTED_CLASSES, help="tumor class to segment in --volumes")
    model.add_argument("--plane", choices=("axial", "coronal", "sagittal"), default="axial",
                       help="slicing plane for --volumes (default: axial)")
    model.add_argument("--segmenter", choices=("medsam", "litemedsam"), help="mask model (default: the pipeline's)")
    model.add_argument("--adapter", metavar="ID|PATH|none",
                       help="detector LoRA adapter: registry id, PEFT folder, .pth, or 'none' for the base model")
    model.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    model.add_argument("--box-threshold", type=float, metavar="T", help="detector box score threshold")
    model.add_argument("--text-threshold", type=float, metavar="T", help="detector text score threshold")
    model.add_argument("--iou", type=float, default=0.5, help="IoU for a detection to count (default: 0.5)")
    out = parser.add_argument_group("output")
    out.add_argument("--csv", metavar="OUT", help="write per-case rows to OUT and the summary to OUT_summary.csv")
    out.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.set_defaults(func=run)


def _mode(args) -> str:
    """Which evaluation the flags ask for; conflicting or incomplete flags are an InputError."""
    given = {name for name in ("brisc", "predictions", "ground_truth", "volumes", "labels", "coco", "images")
             if getattr(args, name)}
    if args.detector_only:
        if given == {"brisc"} or given == {"coco", "images"}:
            return "detector"
        raise InputError("--detector-only needs either --brisc DIR or --coco JSON --images DIR.")
    if given & {"predictions", "ground_truth"}:
        if given != {"predictions", "ground_truth"}:
            raise InputError("Use --predictions PRED_DIR together with --ground-truth GT_DIR, and nothing else.")
        return "predictions"
    if given & {"volumes", "labels"}:
        if given != {"volumes", "labels"}:
            raise InputError("Use --volumes IMAGES_DIR together with --labels LABELS_DIR.")
        if not args.prompt:
            raise InputError(f"--volumes needs --prompt CLASS ({', '.join(SUPPORTED_CLASSES)}).")
        return "volumes"
    if given & {"coco", "images"}:
        raise InputError("--coco and --images are for --detector-only.")
    if given == {"brisc"}:
        return "brisc"
    raise InputError("Say what to evaluate: --brisc DIR, --predictions DIR --ground-truth DIR, "
                     "--volumes DIR --labels DIR --prompt CLASS, or --detector-only (see logsam evaluate -h).")


def _pipeline(args, **extra: Any) -> Any:
    """The pipeline (imported lazily: it loads the models) with the options given on the command line."""
    try:
        from ..pipeline import Pipeline, PipelineOptions
    except ModuleNotFoundError as error:
        if error.name and error.name.endswith("pipeline"):
            raise NotBuiltError("The model pipeline is not available in this version; "
                                "use --predictions/--ground-truth to score saved outputs.") from error
        raise
    values = {"segmenter": args.segmenter, "device": args.device, "box_threshold": args.box_threshold,
              "text_threshold": args.text_threshold, "adapter": args.adapter, **extra}
    kwargs = {k: v for k, v in values.items() if v is not None}
    if str(kwargs.get("adapter", "")).lower() == "none":
        kwargs["adapter"] = None  # the base detector, e.g. to compare against an adapter
    try:
        options = PipelineOptions(**kwargs)
    except TypeError as error:
        raise NotBuiltError(f"This pipeline version does not accept one of the options given: {error}") from error
    return Pipeline(options)


def class_of(phrase: str, classes: list[str]) -> str | None:
    """The class a detector phrase names: exact, else the first class named inside it."""
    phrase = phrase.strip().lower()
    if phrase in classes:
        return phrase
    return next((c for c in classes if c in phrase), None)


def _caption(classes: list[str]) -> str:
    from ..prompts import caption_for

    parts = []
    for label in classes:
        try:
            parts.append(caption_for(label))
        except (KeyError, ValueError):  # a class of a custom COCO set
            parts.append(f"{label} .")
    return " ".join(parts)


def _run_brisc(args, progress) -> Any:
    import numpy as np

    from ..evaluation import evaluate_brisc

    pipe = _pipeline(args)

    def predict(image, label, plane):
        if label is None:  # a no-tumor image: whatever any class prompt finds is a false positive
            return np.logical_or.reduce([pipe.segment_image2d(image, c) for c in SUPPORTED_CLASSES])
        return pipe.segment_image2d(image, label)

    return evaluate_brisc(args.brisc, predict, progress=progress, limit=args.limit, split=args.split,
                          include_negatives=args.include_negatives)


def _run_volumes(args, progress) -> Any:
    from ..datasets import find_volume_pairs
    from ..evaluation import evaluate_volumes

    pairs = find_volume_pairs(args.volumes, args.labels)
    pipe = _pipeline(args, plane=args.plane)

    def predict(volume):
        return pipe.segment(volume, [args.prompt]).segmentation.mask(args.prompt)

    return evaluate_volumes(pairs, predict, label=args.prompt, progress=progress, limit=args.limit)


def _run_detector(args, progress) -> Any:
    from dataclasses import replace

    from ..datasets import detection_samples_from_brisc, load_brisc, load_coco
    from ..evaluation import dataset_classes, evaluate_detector

    if args.brisc:
        samples = detection_samples_from_brisc(load_brisc(args.brisc, split=args.split))
    else:
        samples = load_coco(args.coco, args.images)
    classes = dataset_classes(samples)
    if not classes:
        raise InputError("The data set has no labelled boxes; nothing to measure recall or AP against.")
    caption = _caption(classes)
    detector = _pipeline(args).detector

    def detect(image, wanted):
        boxes = detector.detect([image], caption, box_threshold=args.box_threshold,
                                text_threshold=args.text_threshold)[0]
        labelled = [(box, class_of(box.label, wanted)) for box in boxes]
        return [replace(box, label=label) for box, label in labelled if label is not None]

    return evaluate_detector(samples, detect, classes=classes, iou_threshold=args.iou, progress=progress,
                             limit=args.limit)


def _run_predictions(args, progress) -> Any:
    from ..evaluation import evaluate_predictions

    return evaluate_predictions(args.predictions, args.ground_truth, progress=progress)


_RUNNERS = {"brisc": _run_brisc, "volumes": _run_volumes, "detector": _run_detector,
            "predictions": _run_predictions}


def run(args) -> int:
    from ..evaluation import summary_table, write_csv

    mode = _mode(args)
    if args.limit is not None and args.limit <= 0:
        raise InputError(f"--limit must be a positive number, got {args.limit}.")
    progress, close = terminal_progress()
    try:
        result = _RUNNERS[mode](args, progress)
    finally:
        close()
    if args.csv:
        written = write_csv(result, args.csv)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    else:
        print(summary_table(result))
    return 0
