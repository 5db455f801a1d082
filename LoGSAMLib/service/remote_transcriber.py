"""A transcriber whose passes run in a ``logsam serve`` engine (local process or remote server).

:class:`~LoGSAMLib.asr.live.LiveTranscriber` re-transcribes the growing recording while the
radiologist speaks; with :class:`RemoteTranscriber` each pass is a transcription job of the engine,
so the client (3D Slicer) only records and waits on the network. Standard library and numpy only.

    live = LiveTranscriber(lambda: RemoteTranscriber(client), passes_on_cpu=False, on_partial=show)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import write_wav
from ..types import Transcript, TranscriptSegment


class RemoteTranscriber:
    """``transcribe(audio, ...)`` as :class:`~LoGSAMLib.asr.Transcriber` has it, run by the engine.

    ``device`` is the engine's (from ``health()``), so that ``LiveTranscriber(passes_on_cpu=False)``
    runs no passes on a CPU engine. ``last_report`` is the engine's answer to the latest call
    (``cross_check`` included; ``None`` after a failed call), for the reviewer's translation check.
    """

    def __init__(self, client: Any, options: dict[str, Any] | None = None, device: str | None = None) -> None:
        self.client = client
        self.options = options
        self.device = device if device is not None else str(client.health().get("device") or "cpu")
        self.last_report: dict[str, Any] | None = None

    def transcribe(self, audio: np.ndarray | str | Path, language: str | None = None, task_translate: bool = True,
                   progress: Any = None, cancel: Any = None) -> Transcript:
        """The engine always adds the English translation of non-English speech (``task_translate`` is
        accepted for the interface's sake)."""
        self.last_report = None
        with tempfile.TemporaryDirectory(prefix="logsam-live-") as folder:
            path = audio if isinstance(audio, str | Path) else write_wav(Path(folder) / "recording.wav", audio)
            job_id = self.client.submit_transcribe(path, language, options=self.options)
            self.client.wait(job_id, progress, cancel)
            report = self.client.fetch(job_id, [], None)
        self.last_report = report
        return transcript_from_report(report)


def transcript_from_report(report: dict[str, Any]) -> Transcript:
    """The :class:`Transcript` of a transcription job's report (``Transcript.to_dict`` plus extras)."""
    def segments(key: str) -> list[TranscriptSegment]:
        return [TranscriptSegment(float(s["start"]), float(s["end"]), str(s["text"])) for s in report.get(key) or []]

    return Transcript(
        text=report.get("text") or "", language=report.get("language") or "",
        translation=report.get("translation"), segments=segments("segments"),
        translated_segments=segments("translated_segments"), model_id=report.get("model_id") or "",
        timings=dict(report.get("timings") or {}), no_speech_probability=report.get("no_speech_probability"))
