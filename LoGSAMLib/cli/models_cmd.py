"""`logsam models`: list, download, verify, import and clear model weights."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "list, download, verify, import and clear model weights"


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam models' is not built yet in this version.")
