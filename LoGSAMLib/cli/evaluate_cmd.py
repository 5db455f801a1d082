"""`logsam evaluate`: score predictions against ground truth (BRISC folder or 3D label maps)."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "score predictions against ground truth (BRISC folder or 3D label maps)"


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam evaluate' is not built yet in this version.")
