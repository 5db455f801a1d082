"""`logsam segment`: segment a volume from a class prompt or a 3D box, without speech."""

from __future__ import annotations

import argparse

from .common import add_verbose, print_json, terminal_progress
from .pipeline_args import (
    add_input_output,
    add_model_options,
    check_outputs,
    info,
    pipeline_options,
    report_path,
    summarize,
    write_results,
)
from .remote import add_server_options, segment_remote

HELP = "segment a volume from a class prompt or a 3D box, without speech"
CLASSES = ("glioma", "meningioma", "pituitary")


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment", help=HELP, description=HELP)
    add_input_output(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", choices=CLASSES, action="append",
                        help="tumor class to detect (repeat for several)")
    source.add_argument("--box-ras", type=float, nargs=6, metavar=("R1", "A1", "S1", "R2", "A2", "S2"),
                        help="two opposite corners of a 3D box in RAS millimetres (as a Slicer ROI gives "
                             "them); every slice the box covers is segmented, no detector")
    parser.add_argument("--label", choices=CLASSES, default="glioma", help="class of the --box-ras segment")
    add_model_options(parser)
    add_server_options(parser)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return segment_remote(args)
    from ..pipeline import Pipeline
    from ..volume import read_volume

    check_outputs(args.output)
    volume = read_volume(args.volume, component=args.volume_index)
    pipe = Pipeline(pipeline_options(args))
    progress, close = terminal_progress()
    try:
        if args.box_ras is not None:
            r1, a1, s1, r2, a2, s2 = args.box_ras
            box_lps = ((-r1, -a1, s1), (-r2, -a2, s2))
            result = pipe.segment_box(volume, box_lps, args.label, progress=progress)
        else:
            classes = list(dict.fromkeys(args.prompt))
            result = pipe.segment(volume, classes, None, progress=progress)
    finally:
        close()
    report = {"input": str(args.volume), **result.report}
    write_results(args, result.segmentation, report)
    info(args, "Segmented:\n" + summarize(report))
    info(args, "Wrote " + ", ".join(str(p) for p in [*args.output, report_path(args)]))
    if args.json:
        print_json(report)
    return 0
