"""Helpers shared by the subcommands: progress bars, JSON output, verbose flag."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..progress import ProgressCallback, no_progress


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """Accept ``-v/--verbose`` after the subcommand too (``logsam run ... -v``)."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show details and tracebacks on errors")


def check_text_arguments(args: argparse.Namespace) -> None:
    """The dictation text (``--text``, ``extract TEXT``) must be valid UTF-8: a shell passes undecodable
    bytes as lone surrogates, which would crash the NLP or the report far from here."""
    from ..errors import InputError

    values = getattr(args, "text", None)
    for value in values if isinstance(values, list) else [values]:
        if not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputError(f"The dictation text is not valid UTF-8 (an undecodable byte at character "
                             f"{error.start + 1}); set the terminal to UTF-8 or retype the text.") from None


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def terminal_progress(enabled: bool | None = None) -> tuple[ProgressCallback, Callable[[], None]]:
    """A progress callback drawing one tqdm bar per stage on a terminal (quiet when piped).

    Returns ``(callback, close)``.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return no_progress, lambda: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def callback(stage: str, fraction: float, message: str = "") -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bars.clear()
            bar = bars[stage] = tqdm(total=1000, desc=stage, file=sys.stderr, leave=False,
                                     bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
        bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()

    return callback, close
