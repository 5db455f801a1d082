"""`logsam train`: LoRA-adapt Grounding DINO on your own data."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "LoRA-adapt Grounding DINO on your own data"


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam train' is not built yet in this version.")
