"""One case, start to finish, exactly as ``logsam run`` / ``logsam segment`` do it; shared by every runner.

:class:`CaseRunner` keeps its models loaded between cases (one pipeline per segmenter; the plane
is a light option changed per case). Its outputs go through the same output plan and
``write_results`` transaction as the CLI's, then the report is rewritten once more with the
SHA-256 of each output: a report carrying checksums that match its outputs marks a finished case
(:func:`verified_report`), which is what resuming relies on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, LoGSAMError
from .manifest import Case

log = logging.getLogger(__name__)

# Test hook: a worker process (pool or Ray actor) kills itself with SIGKILL when it starts this
# case on its first attempt, so that the retry of a lost worker's case is tested with a real death.
KILL_ENV = "LOGSAM_TEST_KILL_CASE"
REPORT_SUFFIX = ".report.json"


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs; plain values so that it pickles to processes and Ray actors."""

    output_dir: str
    formats: tuple[str, ...] = (".nii.gz",)
    options: dict[str, Any] = field(default_factory=dict)  # PipelineOptions fields

    def pipeline_options(self, **changes: Any):
        from ..pipeline import PipelineOptions

        return dataclasses.replace(PipelineOptions(**self.options), **changes)

    def paths(self, case: Case) -> tuple[list[Path], Path]:
        """The case's segmentation files (one per format) and its report."""
        folder = Path(self.output_dir)
        return [folder / f"{case.case}{fmt}" for fmt in self.formats], folder / f"{case.case}{REPORT_SUFFIX}"


def case_key(case: Case, settings: BatchSettings) -> str:
    """What a case's outputs depend on: its row, the batch options and formats, and its input files
    (name, size, modification time), so that a changed row or a replaced volume is redone."""
    files = [p for p in (case.volume, case.audio, case.ground_truth) if p]
    stamps = []
    for name in files:
        path = Path(name)
        members = sorted(path.iterdir()) if path.is_dir() else [path]
        for member in members:
            try:
                stat = member.stat()
                stamps.append([str(member), stat.st_size, stat.st_mtime_ns])
            except OSError:
                stamps.append([str(member), None, None])
    text = json.dumps({"case": case.to_dict(), "options": settings.options, "formats": list(settings.formats),
                       "inputs": stamps}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def verified_report(case: Case, settings: BatchSettings) -> dict[str, Any] | None:
    """The case's report when its outputs are complete and match the checksums it records, else None."""
    from ..models import sha256_file

    segmentations, report_path = settings.paths(case)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    batch = report.get("batch") if isinstance(report, dict) else None
    if not isinstance(batch, dict) or batch.get("key") != case_key(case, settings):
        return None
    recorded = batch.get("outputs_sha256")
    expected = [str(p) for p in segmentations] if report.get("outputs") else []
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(expected) or report.get("outputs", []) != expected:
        return None
    for name, digest in recorded.items():
        try:
            if sha256_file(name) != digest:
                return None
        except OSError:
            return None
    return report


class CaseRunner:
    """Runs cases one at a time with models loaded once (per segmenter)."""

    def __init__(self, settings: BatchSettings, in_worker: bool = False) -> None:
        self.settings = settings
        self.in_worker = in_worker  # only worker processes honour the kill test hook
        self._pipelines: dict[str | None, Any] = {}

    def pipeline(self, segmenter: str | None = None, plane: str | None = None):
        from ..pipeline import Pipeline

        pipe = self._pipelines.get(segmenter)
        if pipe is None:
            changes = {"segmenter": segmenter} if segmenter else {}
            pipe = self._pipelines[segmenter] = Pipeline(self.settings.pipeline_options(**changes))
        wanted = plane or self.settings.options.get("plane", "axial")
        if pipe.options.plane != wanted:  # a light option: the loaded models stay
            pipe.options = dataclasses.replace(pipe.options, plane=wanted)
        return pipe

    def load_models(self) -> float:
        """Load the detector and segmenter now (what a per-case process would pay every time); seconds."""
        started = time.perf_counter()
        pipe = self.pipeline()
        pipe.detector  # noqa: B018 - loading is the point
        pipe.segmenter  # noqa: B018
        return time.perf_counter() - started

    def run(self, case: Case, attempt: int = 1) -> dict[str, Any]:
        """Run one case; returns its summary row. A case's own failure is recorded, never raised."""
        from .summary import failed_row, row_from_report

        if self.in_worker and attempt == 1 and os.environ.get(KILL_ENV) == case.case:
            os.kill(os.getpid(), signal.SIGKILL)
        started = time.perf_counter()
        try:
            report = self._run(case, started)
        except LoGSAMError as error:
            return failed_row(case, str(error), attempt, time.perf_counter() - started)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # a bug or a library error in one case must not stop the cohort
            log.debug("case failed", exc_info=True)
            return failed_row(case, f"{type(error).__name__}: {error}", attempt, time.perf_counter() - started)
        return row_from_report(case, report, this_run=True, attempts=attempt)

    def _run(self, case: Case, started: float) -> dict[str, Any]:
        from ..cli.pipeline_args import write_results
        from ..outputs import OutputPlan, write_report
        from ..volume import input_files, read_volume

        segmentations, report_path = self.settings.paths(case)
        inputs = [*input_files(case.volume), *(Path(p) for p in (case.audio, case.ground_truth) if p)]
        plan = OutputPlan.build(segmentations, report_path, inputs)
        volume = read_volume(case.volume)
        truth = _read_truth(case, volume) if case.ground_truth else None
        pipe = self.pipeline(case.segmenter, case.plane)
        timings: dict[str, float] = {"read": time.perf_counter() - started}

        from ..dictation import read_dictation, segmented_report

        report: dict[str, Any] = {"input": case.volume}
        dictation = None
        if case.prompt:
            classes = list(case.prompt)
        else:
            mark = time.perf_counter()
            dictation = read_dictation(pipe, text=case.text, audio=case.audio)
            report.update(dictation.report)
            if case.audio:
                timings["transcribe"] = time.perf_counter() - mark
            # No reader to ask in a batch: a cross-check disagreement is recorded and not segmented.
            classes = [] if dictation.stop_code() is not None else list(dictation.findings.affirmed)

        mark = time.perf_counter()
        if classes:
            result = pipe.segment(volume, classes, dictation.findings if dictation else None)
            full = (segmented_report(dictation, result.report, input=case.volume) if dictation
                    else {**report, **result.report, "input": case.volume})
            labelmap = result.segmentation.labelmap.array
        else:
            full, result, labelmap = {**report, "outputs": []}, None, None
        timings["pipeline"] = time.perf_counter() - mark
        if truth is not None:
            full["evaluation"] = _score(case, volume, truth, labelmap)
        full["batch"] = {"case": case.case, "key": case_key(case, self.settings), "outputs_sha256": None}
        if result is not None:
            write_results(plan, result.segmentation, full)
        else:
            plan.write_report_only(full)
        # The checksums of the files just committed make the report the proof of a finished case.
        from ..models import sha256_file

        full["batch"]["outputs_sha256"] = {str(p): sha256_file(p) for p in (segmentations if result else [])}
        timings["total"] = time.perf_counter() - started
        full["batch"]["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        write_report(full, report_path)
        return full


def _read_truth(case: Case, volume):
    # evaluation's reader: read_volume refuses images with few values, which a label map is.
    from ..evaluation import _read_volume

    truth = _read_volume(Path(case.ground_truth))
    if truth.array.shape != volume.array.shape:
        raise InputError(f"The ground truth of case {case.case} has size {truth.shape_ijk} but its volume has "
                         f"{volume.shape_ijk}; the label map must be on the volume's grid.")
    return truth


def _score(case: Case, volume, truth, labelmap) -> dict[str, Any]:
    import numpy as np

    from ..evaluation import score_case
    from ..outputs import CLASS_LABELS

    gt = np.asarray(truth.array) > 0
    pred = np.zeros(gt.shape, dtype=bool) if labelmap is None else np.asarray(labelmap) > 0
    values = {int(v) for v in np.unique(truth.array) if v > 0}
    names = [name for name, value in CLASS_LABELS.items() if value in values]
    label = names[0] if len(names) == 1 and len(values) == 1 else ""
    return dataclasses.asdict(score_case(case.case, label, pred, gt, volume.spacing))
