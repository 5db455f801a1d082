"""`logsam record`: record a dictation from the microphone to a WAV file."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "record a dictation from the microphone to a WAV file"


def register(subparsers) -> None:
    parser = subparsers.add_parser("record", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam record' is not built yet in this version.")
