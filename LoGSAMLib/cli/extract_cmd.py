"""`logsam extract`: find affirmed / negated tumor classes in dictation text."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "find affirmed / negated tumor classes in dictation text"


def register(subparsers) -> None:
    parser = subparsers.add_parser("extract", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam extract' is not built yet in this version.")
