"""`logsam run`: the whole method: dictation (audio or text) + MRI volume -> tumor segmentation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_verbose, print_json, terminal_progress
from .pipeline_args import (
    add_input_output,
    add_model_options,
    check_dicom_source,
    info,
    prepare,
    read_input,
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
    source.add_argument("--text", help="typed or corrected dictation text (English or German)")
    speech = parser.add_argument_group("speech")
    speech.add_argument("--whisper-model", default=None,
                        help="whisper-large-v3 (the method's model), whisper-small, ... (default by device)")
    speech.add_argument("--asr-backend", choices=("auto", "openai", "faster"), default="auto")
    speech.add_argument("--language", default=None, help="spoken language, e.g. de (default: detect)")
    parser.add_argument("--confirm", action="store_true",
                        help="show the transcript and findings and ask before segmenting (the detector "
                             "starts searching while you read; nothing is segmented without a yes); needed "
                             "when the transcript and its English translation name different classes")
    add_model_options(parser)
    add_server_options(parser)
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return run_remote(args)
    plan, pipe = prepare(args)
    volume = read_input(args)
    check_dicom_source(args, volume)
    from ..dictation import CROSS_CHECK_FAILED, NOTHING_TO_SEGMENT, read_dictation, segmented_report

    progress, close = terminal_progress()
    try:
        dictation = read_dictation(pipe, text=args.text, audio=args.audio, progress=progress)
        close()
        report = {"input": str(args.volume), **dictation.report}
        findings, check = dictation.findings, dictation.cross_check
        _describe_dictation(args, report, check)
        info(args, _describe_findings(findings))
        stop = dictation.stop_code(confirmed=args.confirm)  # --confirm asks below, after the findings
        if dictation.disagrees:
            # Shown even with --quiet: a lost "kein" would segment a tumor the radiologist denied.
            print(f"\n*** CROSS-CHECK FAILED ***\n{check.message}\n", file=sys.stderr)
        if stop == CROSS_CHECK_FAILED:
            plan.write_report_only({**report, "outputs": []})
            print("Not segmented: rerun with --confirm to read the findings and answer yes. The transcript "
                  "was kept in " + str(plan.report), file=sys.stderr)
            return stop
        if stop == NOTHING_TO_SEGMENT:
            plan.write_report_only({**report, "outputs": []})
            info(args, "Nothing to segment. The dictation was kept in " + str(plan.report))
            return stop
        if args.confirm:
            # The detector searches while the user reads; only a "yes" lets its boxes be used.
            pipe.start_detection(volume, findings.affirmed, findings)
            warning = "the transcript and translation DISAGREE. " if dictation.disagrees else ""
            if not _ask(f"{warning}Segment {', '.join(findings.affirmed)}? [y/N] "):
                pipe.cancel_detection()
                plan.write_report_only({**report, "outputs": []})
                info(args, "Not segmented. The dictation was kept in " + str(plan.report))
                return 1
        result = pipe.segment(volume, findings.affirmed, findings, progress=progress)
    finally:
        close()
    full = segmented_report(dictation, result.report, input=str(args.volume))
    write_results(plan, result.segmentation, full)
    info(args, "Segmented:\n" + summarize(full))
    info(args, "Wrote " + ", ".join(str(p) for p in plan.paths))
    if args.json:
        print_json(full)
    return 0


def _describe_dictation(args: argparse.Namespace, report: dict, check) -> None:
    for warning in report["warnings"]:
        info(args, "warning: " + warning)
    transcript = report["transcript"]
    if transcript is None:
        return
    info(args, f"Transcript ({transcript['language']}): {transcript['text']}")
    if transcript.get("translation") is not None:
        info(args, f"English translation: {transcript['translation']}")
    if check is not None and check.agree:
        info(args, "Cross-check: " + check.message)


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


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        print(question + "(no terminal to ask on: not segmenting)", file=sys.stderr)
        return False
    return input(question).strip().lower() in ("y", "yes")
