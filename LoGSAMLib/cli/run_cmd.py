"""`logsam run`: the whole method: dictation (audio or text) + MRI volume -> tumor segmentation."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "the whole method: dictation (audio or text) + MRI volume -> tumor segmentation"


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam run' is not built yet in this version.")
