"""A dictation read into findings, and what may be segmented from it: one step for every door.

`logsam run`, the server's run job and a `logsam batch` case all read a dictation the same way:
audio is loaded and its level checked, transcribed (and translated to English when not English),
the spoken-language transcript is cross-checked against its translation, and the findings are
read from the English text. The decision is made here once:

- nothing is segmented when no class is affirmed (:data:`NOTHING_TO_SEGMENT`);
- nothing is segmented without a reader's yes when the transcript and its translation name
  different classes (:data:`CROSS_CHECK_FAILED`): a "kein" that the translation lost would
  otherwise segment a tumor the radiologist denied. Only the command line and the Slicer review
  can ask; the server and a batch record the disagreement and stop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .progress import CancelToken, ProgressCallback, no_progress
from .types import Findings

NOTHING_TO_SEGMENT = 3
CROSS_CHECK_FAILED = 4


@dataclasses.dataclass
class Dictation:
    """What was heard and understood: ``report`` holds the JSON-ready ``transcript`` (None for
    typed text), ``warnings`` (audio level), ``cross_check`` (when there was a translation) and
    ``findings``."""

    report: dict[str, Any]
    findings: Findings
    cross_check: Any | None = None  # nlp.crosscheck.CrossCheck

    @property
    def disagrees(self) -> bool:
        return self.cross_check is not None and not self.cross_check.agree

    def stop_code(self, confirmed: bool = False) -> int | None:
        """Why nothing may be segmented (an exit code), or None when the affirmed classes may be."""
        if self.disagrees and not confirmed:
            return CROSS_CHECK_FAILED
        if not self.findings.affirmed:
            return NOTHING_TO_SEGMENT
        return None


def read_dictation(
    pipe: Any,
    *,
    text: str | None = None,
    audio: str | Path | np.ndarray | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Dictation:
    """Audio (a file or 16 kHz samples) or typed text -> :class:`Dictation`, with ``pipe`` a Pipeline."""
    report: dict[str, Any] = {"transcript": None, "warnings": []}
    check = None
    if audio is not None:
        from .audio import level_warnings, load_audio

        samples = audio if isinstance(audio, np.ndarray) else load_audio(audio)
        report["warnings"] = level_warnings(samples)
        transcript = pipe.transcribe(samples, progress=progress, cancel=cancel)
        report["transcript"] = transcript.to_dict()
        check = pipe.cross_check(transcript)
        if check is not None:
            report["cross_check"] = check.to_dict()
        text = transcript.english
    findings = pipe.extract(text or "")
    report["findings"] = findings.to_dict()
    return Dictation(report, findings, check)


def segmented_report(dictation: Dictation, result_report: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The report of a segmented dictation: what was heard, then the pipeline's report, then ``extra``.
    The report lines follow the language Whisper heard; warnings of both are kept."""
    full = {**dictation.report, **result_report, **extra}
    if dictation.report.get("transcript") is not None:
        from .report_line import dictation_language, report_lines

        full["report_lines"] = report_lines(full.get("lesions") or [], dictation.findings,
                                            dictation_language(full))
    full["warnings"] = [*dictation.report.get("warnings", []), *result_report.get("warnings", [])]
    return full
