"""`logsam extract`: find affirmed / negated tumor classes in dictation text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..prompts import DEFAULT_STYLE, STYLES
from .common import add_verbose

HELP = "find affirmed / negated tumor classes in dictation text"
_PREVIEW = 70


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract", help=HELP, description=HELP + ". Reads one dictation (TEXT) or a file with one per line.",
        epilog='examples:  logsam extract "Left frontal glioblastoma, no meningioma."\n'
               '           logsam extract "Kein Hinweis auf ein Meningeom, V.a. Gliom links frontal."\n'
               "           logsam extract --file dictations.txt --json > findings.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("text", nargs="*", metavar="TEXT", help="the dictation (several words are joined)")
    parser.add_argument("-f", "--file", metavar="FILE",
                        help="read dictations from FILE, one per non-empty line ('-' reads standard input)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON Lines: one object per dictation, in input order")
    parser.add_argument("--style", default=DEFAULT_STYLE, choices=sorted(STYLES),
                        help=f"detector caption style (default: {DEFAULT_STYLE}, the class names used in training)")
    parser.add_argument("--language", default=None, metavar="CODE",
                        help="language of the text, e.g. en or de (default: detected per dictation; "
                             "English and German are read, others get a warning)")
    add_verbose(parser)
    parser.set_defaults(func=run)


def _dictations(args) -> list[tuple[int, str]]:
    """(line number, text) pairs; line number 0 for TEXT given on the command line."""
    text = " ".join(args.text).strip()
    if text and args.file:
        raise InputError("Give either TEXT or --file FILE, not both.")
    if args.file is None:
        if not text:
            raise InputError('No dictation given: pass TEXT (e.g. logsam extract "left frontal glioma") '
                             "or --file FILE.")
        return [(0, text)]
    if args.file == "-":
        content = sys.stdin.read()
    else:
        path = Path(args.file)
        try:
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; check the path.") from None
        except IsADirectoryError:
            raise InputError(f"{path} is a folder; give a text file with one dictation per line.") from None
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text; save it as UTF-8 with one dictation per line.") from None
    lines = [(n, line.strip()) for n, line in enumerate(content.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InputError(f"{args.file} holds no dictation: every line is empty.")
    return lines


def _describe(summary: dict) -> str:
    details = [summary["assertion"]] if summary["assertion"] != "affirmed" else []
    where = " ".join(p for p in (summary["side"], summary["region"]) if p)
    if where:
        details.append(where)
    return f" ({'; '.join(details)})" if details else ""


def _why(findings, label: str) -> str:
    """The first cue that denied ``label``: " (negation: 'kein' (before))"."""
    cues = [cue for f in findings.findings if f.label == label and f.negated for cue in f.cues]
    return f" ({cues[0]})" if cues else ""


def _human(findings, summaries: dict[str, dict]) -> list[str]:
    lines = [f"Warning: {w}" for w in findings.warnings]
    if findings.affirmed:
        lines.append("Affirmed: " + ", ".join(c + _describe(summaries[c]) for c in findings.affirmed))
    else:
        lines.append("No supported tumor class found" +
                     (f"; mentioned: {', '.join(findings.unsupported)}" if findings.unsupported else "."))
    if findings.negated:
        lines.append("Negated: " + ", ".join(c + _why(findings, c) for c in findings.negated))
    if findings.affirmed:
        lines.append(f"Prompt: {findings.prompt}")
        if findings.unsupported:
            lines.append("Also mentioned (not a supported class): " + ", ".join(findings.unsupported))
    return lines


def run(args) -> int:
    from ..nlp import class_summary, extract

    for number, text in _dictations(args):
        findings = extract(text, style=args.style, language=args.language)
        summaries = class_summary(findings)
        if args.json:
            record = findings.to_dict()
            record["classes"] = summaries
            if number:
                record["line"] = number
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            continue
        if number:
            preview = text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."
            print(f"Line {number}: {preview}")
            print("\n".join("  " + line for line in _human(findings, summaries)))
        else:
            print("\n".join(_human(findings, summaries)))
    return 0
