"""The ``logsam`` command. One module per subcommand, each with ``register(subparsers)``.

Subcommand modules must import only the standard library and light LoGSAMLib modules at
module scope, so that ``logsam --help`` stays fast; heavy work is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from .. import __version__
from ..errors import LoGSAMError

# Order shown in --help.
SUBCOMMANDS = ("run", "record", "transcribe", "extract", "segment", "evaluate", "train", "models", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logsam",
        description="LoGSAM: turn a spoken radiology report into a brain-tumor segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"logsam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show details and tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f".{name}_cmd", __name__)
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except LoGSAMError as error:
        if args.verbose:
            traceback.print_exc()
        print(f"logsam {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"logsam {args.command}: interrupted; no output was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
