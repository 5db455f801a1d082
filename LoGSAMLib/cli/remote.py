"""`logsam run/segment/transcribe --server URL`: the same command, with the work done by a `logsam serve`.

The outputs are the ones the local command writes (the server runs the same pipeline and writes the
same formats); only the report's ``input`` and ``outputs`` are filled in here, with the local paths.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..errors import InputError

_SERVER_DECIDES = ("device", "precision")  # the server's hardware, not the client's


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine server (instead of local models)")
    group.add_argument("--server", metavar="URL", default=None,
                       help="run on a `logsam serve` at URL (e.g. https://gpu-host:8470) instead of locally")
    group.add_argument("--token", default=None,
                       help="the server's token (default: $LOGSAM_TOKEN, else the local token file; prefer "
                            "LOGSAM_TOKEN: a command line is visible to other users)")
    group.add_argument("--cafile", type=Path, default=None,
                       help="CA certificate (PEM) to trust for an https server with its own certificate")


def client_for(args: argparse.Namespace):
    from ..service.auth import TOKEN_ENV, default_token_file, read_token
    from ..service.client import EngineClient

    token = args.token or os.environ.get(TOKEN_ENV) or read_token(default_token_file())
    if not token:
        raise InputError(f"No token for {args.server}: pass --token, set {TOKEN_ENV}, or ask the server's "
                         "administrator (`logsam serve --print-token` on the server).")
    return EngineClient(args.server, token, cafile=args.cafile)


def _server_options(options: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(options).items() if k not in _SERVER_DECIDES}


def _volume_for_upload(args: argparse.Namespace, stack: ExitStack) -> Path:
    """The volume as a file the server accepts; DICOM, PNG or one component of a 4D image is converted here."""
    from ..service.client import VOLUME_SUFFIXES

    path = Path(args.volume)
    if path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES) and args.volume_index is None:
        return path
    from ..volume import read_volume, write_volume

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="logsam-upload-")))
    return write_volume(read_volume(path, component=args.volume_index), folder / "volume.nii.gz")


def _submit(args: argparse.Namespace, submit) -> str:
    """Upload the volume (converted first if need be) with a progress bar, via ``submit(volume, progress)``."""
    from .common import terminal_progress

    with ExitStack() as stack:
        volume = _volume_for_upload(args, stack)
        progress, close = terminal_progress()
        try:
            return submit(volume, progress)
        finally:
            close()


def _wait_and_fetch(client, job_id: str, args: argparse.Namespace, report_file: Path, outputs: list[Path]):
    from .common import terminal_progress

    progress, close = terminal_progress()
    try:
        status = client.wait(job_id, progress=progress)
    except KeyboardInterrupt:
        client.cancel(job_id)
        raise
    finally:
        close()
    if not status.get("segmented"):
        outputs = []
    report = client.fetch(job_id, outputs, report_file, extra={"input": str(args.volume)})
    return status, report


def run_remote(args: argparse.Namespace) -> int:
    """`logsam run --server`."""
    from .pipeline_args import check_outputs, info, pipeline_options, report_path
    from .run_cmd import _describe_findings

    if args.confirm:
        raise InputError("--confirm works with local models only; drop it or --server.")
    check_outputs(args.output)
    client = client_for(args)
    options = _server_options(pipeline_options(args, whisper_model=args.whisper_model, asr_backend=args.asr_backend,
                                               language=args.language))
    job = _submit(args, lambda volume, progress: client.submit_run(
        volume, text=args.text, audio_path=args.audio, options=options, progress=progress))
    status, report = _wait_and_fetch(client, job, args, report_path(args), list(args.output))
    if report.get("transcript"):
        info(args, f"Transcript ({report['transcript']['language']}): {report['transcript']['text']}")
    info(args, _describe_findings(_findings(report["findings"])))
    if status.get("exit_code") == 3:
        info(args, "Nothing to segment. The dictation was kept in " + str(report_path(args)))
        return 3
    return _show_segmented(args, report)


def segment_remote(args: argparse.Namespace) -> int:
    """`logsam segment --server`."""
    from .pipeline_args import check_outputs, pipeline_options, report_path

    check_outputs(args.output)
    client = client_for(args)
    options = _server_options(pipeline_options(args))
    box_lps = classes = None
    if args.box_ras is not None:
        r1, a1, s1, r2, a2, s2 = args.box_ras
        box_lps = ((-r1, -a1, s1), (-r2, -a2, s2))
    else:
        classes = list(dict.fromkeys(args.prompt))
    job = _submit(args, lambda volume, progress: client.submit_segment(
        volume, classes=classes, box_lps=box_lps, label=args.label, options=options, progress=progress))
    _, report = _wait_and_fetch(client, job, args, report_path(args), list(args.output))
    return _show_segmented(args, report)


def transcribe_remote(args: argparse.Namespace) -> int:
    """`logsam transcribe --server`."""
    from .common import print_json, terminal_progress

    if args.no_translate:
        raise InputError("--no-translate works with local models only (a server always translates).")
    client = client_for(args)
    progress, close = terminal_progress(None if not args.json else False)
    try:
        transcript = client.transcribe(args.audio, args.language, progress=progress,
                                       options={"whisper_model": args.model, "asr_backend": args.backend})
    finally:
        close()
    if args.json:
        print_json(transcript)
        return 0
    print(f"language:    {transcript['language']} ({'given' if args.language else 'detected'})")
    print(f"transcript:  {transcript['text']}")
    if transcript.get("translation") is not None:
        print(f"translation: {transcript['translation']}")
    print(f"model:       {transcript.get('model_id')} (on {args.server})")
    return 0


def _show_segmented(args: argparse.Namespace, report: dict[str, Any]) -> int:
    from .common import print_json
    from .pipeline_args import info, report_path, summarize

    info(args, "Segmented:\n" + summarize(report))
    info(args, "Wrote " + ", ".join(str(p) for p in [*args.output, report_path(args)]))
    if args.json:
        print_json(report)
    return 0


def _findings(data: dict[str, Any]):
    from ..types import Finding, Findings

    return Findings(data["text"], [Finding(**f) for f in data["findings"]], list(data["affirmed"]),
                    list(data["negated"]), list(data["unsupported"]), dict(data["prompts"]))
