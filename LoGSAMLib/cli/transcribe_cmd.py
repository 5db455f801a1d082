"""`logsam transcribe`: transcribe (and translate) a dictation audio file with Whisper."""

from __future__ import annotations

from ..errors import NotBuiltError
from .common import add_verbose

HELP = "transcribe (and translate) a dictation audio file with Whisper"


def register(subparsers) -> None:
    parser = subparsers.add_parser("transcribe", help=HELP, description=HELP)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("'logsam transcribe' is not built yet in this version.")
