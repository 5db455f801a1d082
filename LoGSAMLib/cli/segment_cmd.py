"""`logsam segment`: segment a volume from a class prompt or a 3D box, without speech."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "segment a volume from a class prompt or a 3D box, without speech"


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam segment' is not built yet in this version.")
