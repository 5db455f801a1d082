"""`logsam compare PRIOR.json CURRENT.json`: the change of each lesion between two LoGSAM reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_verbose, print_json

HELP = "follow-up: each lesion's change in volume and bidimensional product between two reports"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help=HELP,
        description=HELP + ". Lesions are matched by class and position (centroids in patient coordinates), "
                           "so both studies must share a patient frame (registered or positioned alike).")
    parser.add_argument("prior", type=Path, help="the earlier LoGSAM JSON report")
    parser.add_argument("current", type=Path, help="the later LoGSAM JSON report")
    parser.add_argument("-o", "--output", type=Path, metavar="OUT.json", help="write the comparison as JSON")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compare import compare_reports, describe, load_report

    prior, current = load_report(args.prior), load_report(args.current)
    comparison = {"prior": str(args.prior), "current": str(args.current), **compare_reports(prior, current)}
    if args.output:
        from ..outputs import write_report

        write_report(comparison, args.output)
    if args.json:
        print_json(comparison)
    else:
        print(f"Change from {args.prior.name} to {args.current.name}:\n" + describe(comparison["lesions"]))
    return 0
