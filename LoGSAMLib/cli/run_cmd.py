"""`logsam run`: the whole method: dictation (audio or text) + MRI volume -> tumor segmentation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_verbose, print_json, terminal_progress
from .pipeline_args import (
    add_input_output,
    add_model_options,
    check_outputs,
    info,
    pipeline_options,
    report_path,
    summarize,
    write_results,
)
from .remote import add_server_options, run_remote

HELP = "the whole method: dictation (audio or text) + MRI volume -> tumor segmentation"


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help=HELP, description=HELP)
    add_input_output(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", type=Path, help="recorded dictation (WAV/FLAC/MP3/OGG)")
    source.add_argument("--text", help="typed or corrected dictation text (English)")
    speech = parser.add_argument_group("speech")
    speech.add_argument("--whisper-model", default=None,
                        help="whisper-large-v3 (the method's model), whisper-small, ... (default by device)")
    speech.add_argument("--asr-backend", choices=("auto", "openai", "faster"), default="auto")
    speech.add_argument("--language", default=None, help="spoken language, e.g. de (default: detect)")
    parser.add_argument("--confirm", action="store_true",
                        help="show the transcript and findings and ask before segmenting (the detector "
                             "starts searching while you read; nothing is segmented without a yes)")
    add_model_options(parser)
    add_server_options(parser)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return run_remote(args)
    from ..pipeline import Pipeline
    from ..volume import read_volume

    check_outputs(args.output)
    volume = read_volume(args.volume, component=args.volume_index)
    pipe = Pipeline(pipeline_options(args, whisper_model=args.whisper_model, asr_backend=args.asr_backend,
                                     language=args.language))
    progress, close = terminal_progress()
    report: dict = {"input": str(args.volume)}
    try:
        if args.audio is not None:
            transcript = pipe.transcribe(args.audio, progress=progress)
            close()
            report["transcript"] = transcript.to_dict()
            info(args, f"Transcript ({transcript.language}): {transcript.text}")
            if transcript.translation is not None:
                info(args, f"English translation: {transcript.translation}")
            text = transcript.english
        else:
            text = args.text
            report["transcript"] = None
        findings = pipe.extract(text)
        report["findings"] = findings.to_dict()
        info(args, _describe_findings(findings))

        if not findings.affirmed:
            _save_partial_report(args, report)
            info(args, "Nothing to segment. The dictation was kept in " + str(report_path(args)))
            return 3
        if args.confirm:
            # The detector searches while the user reads; only a "yes" lets its boxes be used.
            pipe.start_detection(volume, findings.affirmed, findings)
            if not _ask(f"Segment {', '.join(findings.affirmed)}? [y/N] "):
                pipe.cancel_detection()
                _save_partial_report(args, report)
                info(args, "Not segmented. The dictation was kept in " + str(report_path(args)))
                return 1
        result = pipe.segment(volume, findings.affirmed, findings, progress=progress)
    finally:
        close()
    full = {**report, **result.report, "input": str(args.volume)}
    write_results(args, result.segmentation, full)
    info(args, "Segmented:\n" + summarize(full))
    info(args, "Wrote " + ", ".join(str(p) for p in [*args.output, report_path(args)]))
    if args.json:
        print_json(full)
    return 0


def _describe_findings(findings) -> str:
    lines = ["Findings:"]
    for f in findings.findings:
        flags = [name for name in ("negated", "uncertain", "historical") if getattr(f, name)]
        where = " ".join(x for x in (f.side, f.region) if x)
        lines.append(f"  {f.label:<11} {'/'.join(flags) or 'affirmed':<20} {where:<18} \"{f.text}\"")
    lines.append(f"  to segment: {', '.join(findings.affirmed) or 'none'}"
                 + (f"; not supported: {', '.join(findings.unsupported)}" if findings.unsupported else ""))
    if findings.affirmed:
        lines.append(f"  detector prompt: {findings.prompt}")
    return "\n".join(lines)


def _save_partial_report(args: argparse.Namespace, report: dict) -> None:
    """Keep the transcript and findings even when nothing is segmented."""
    from ..outputs import write_report

    write_report({**report, "outputs": []}, report_path(args))


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        print(question + "(no terminal to ask on: not segmenting)", file=sys.stderr)
        return False
    return input(question).strip().lower() in ("y", "yes")
