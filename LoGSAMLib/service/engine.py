"""What a server job runs: the same :class:`~LoGSAMLib.pipeline.Pipeline` calls as ``logsam run`` /
``segment`` / ``transcribe``, with the models of each worker loaded once and kept warm.

A job's options may differ from the last one's (plane, thresholds, search); only the options that
choose a model (:data:`MODEL_FIELDS`) pick which warm models it uses.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..early_detection import DetectionCache
from ..errors import InputError
from ..pipeline import Pipeline, PipelineOptions
from .jobs import Job

MODEL_FIELDS = ("whisper_model", "asr_backend", "detector_model", "adapter", "segmenter", "device", "precision")
_OPTION_FIELDS = {f.name for f in dataclasses.fields(PipelineOptions)}
REPORT_NAME = "report.json"


@dataclass
class JobResult:
    report: dict[str, Any]
    segmentation: Any = None  # types.Segmentation, or None when nothing was segmented
    exit_code: int = 0  # as `logsam run` would return: 3 when the dictation affirms no class


# Models load one at a time in the whole server: transformers' lazy imports are not safe to run from
# two threads at once (two workers, or a worker and its early detection thread).
_LOAD_LOCK = threading.Lock()


def _warm(kind: str) -> property:
    def get(self: _WarmPipeline) -> Any:
        if getattr(self._holder, f"_{kind}") is None:
            with _LOAD_LOCK:
                return getattr(self._holder, kind)
        return getattr(self._holder, kind)

    return property(get)


class _WarmPipeline(Pipeline):
    """One job's options; its models are the worker's warm ones (loaded on first use, then kept)."""

    def __init__(self, options: PipelineOptions, holder: Pipeline, detections: DetectionCache) -> None:
        super().__init__(options)
        self._holder = holder
        self._detector_lock = holder._detector_lock  # one detector call at a time per model copy
        self._detections = detections  # the server's: a "detect" job's searches serve the jobs after it

    device = property(lambda self: self._holder.device)
    transcriber = _warm("transcriber")
    detector = _warm("detector")
    segmenter = _warm("segmenter")


class WorkerModels:
    """One worker's warm models, keyed by the options that choose them, and the server's search cache."""

    def __init__(self, detections: DetectionCache | None = None) -> None:
        self._holders: dict[tuple, Pipeline] = {}
        self._detections = detections if detections is not None else DetectionCache()

    def pipeline(self, options: PipelineOptions) -> Pipeline:
        key = tuple(getattr(options, name) for name in MODEL_FIELDS)
        holder = self._holders.get(key)
        if holder is None:
            holder = self._holders[key] = Pipeline(dataclasses.replace(options))
        return _WarmPipeline(options, holder, self._detections)

    def loaded(self) -> list[str]:
        """Which models are loaded (for /health): model kinds, not data."""
        out = []
        for holder in self._holders.values():
            for kind in ("transcriber", "detector", "segmenter"):
                if getattr(holder, f"_{kind}") is not None:
                    out.append(f"{kind}:{getattr(holder, f'_{kind}').__class__.__name__}")
        return sorted(set(out))


def pipeline_options(raw: dict[str, Any] | None, device: str | None, precision: str | None) -> PipelineOptions:
    """A request's options; the device and precision are the server's, whatever the client asked."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - _OPTION_FIELDS)
    if unknown:
        raise InputError(f"Unknown option(s) {', '.join(unknown)}; "
                         f"this server knows {', '.join(sorted(_OPTION_FIELDS))}.")
    raw.update(device=device, precision=precision)
    try:
        return PipelineOptions(**raw)
    except TypeError as error:
        raise InputError(f"Bad options: {error}") from None


def execute(job: Job, models: WorkerModels, device: str | None, precision: str | None) -> JobResult:
    spec = job.spec
    options = pipeline_options(spec.get("options"), device, precision)
    if job.kind == "transcribe":
        options.language = spec.get("language")
        pipe = models.pipeline(options)
        transcript = pipe.transcribe(spec["audio"], progress=job.progress, cancel=job.cancel_token)
        return JobResult(transcript.to_dict())
    from ..volume import read_volume

    job.progress("read", 0.0, "reading the volume")
    volume = read_volume(spec["volume"])
    pipe = models.pipeline(options)
    if job.kind == "detect":
        return _detect(job, pipe, volume)
    if job.kind == "segment":
        if spec.get("box_lps") is not None:
            box = spec["box_lps"]
            result = pipe.segment_box(volume, (tuple(box[0]), tuple(box[1])), spec.get("label") or "glioma",
                                      progress=job.progress, cancel=job.cancel_token)
        else:
            classes = list(dict.fromkeys(spec.get("classes") or []))
            result = pipe.segment(volume, classes, None, progress=job.progress, cancel=job.cancel_token)
        return JobResult({"input": None, **result.report}, result.segmentation)
    # "run": the dictation (audio or text) decides the classes, as in `logsam run`.
    report: dict[str, Any] = {"input": None}
    if spec.get("audio") is not None:
        transcript = pipe.transcribe(spec["audio"], progress=job.progress, cancel=job.cancel_token)
        report["transcript"] = transcript.to_dict()
        text = transcript.english
    else:
        text = spec.get("text") or ""
        report["transcript"] = None
    findings = pipe.extract(text)
    report["findings"] = findings.to_dict()
    if not findings.affirmed:
        return JobResult({**report, "outputs": []}, None, exit_code=3)
    result = pipe.segment(volume, findings.affirmed, findings, progress=job.progress, cancel=job.cancel_token)
    return JobResult({**report, **result.report, "input": None}, result.segmentation)


def _detect(job: Job, pipe: Pipeline, volume: Any) -> JobResult:
    """The slice search alone, kept in the server's cache: a run or segment of the same volume, prompt and
    options that starts after it (queued behind it, with one worker) segments without searching again."""
    try:
        findings = pipe.extract(job.spec["text"]) if job.spec.get("text") else None
        classes = job.spec.get("classes") or (findings.affirmed if findings else [])
        early = pipe.start_detection(volume, classes, findings)
        if early is not None:
            early.wait(job.progress, job.cancel_token)
        return JobResult({"searched": sorted(k.label for k in early.keys) if early else [],
                          "findings": findings.to_dict() if findings else None}, exit_code=0 if early else 3)
    finally:
        Path(job.spec["volume"]).unlink(missing_ok=True)  # nothing to fetch: the volume goes now


def write_bundle(result: JobResult, formats: list[str], folder: Path) -> Path:
    """A zip holding ``report.json`` and the segmentation in each requested format (``output<N><suffix>``)."""
    from ..outputs import SEGMENTATION_SUFFIXES, _jsonable, write_segmentation

    bad = [f for f in formats if f not in SEGMENTATION_SUFFIXES]
    if bad:
        raise InputError(f"Cannot write {bad[0]!r}: use one of {', '.join(SEGMENTATION_SUFFIXES)}.")
    if formats and result.segmentation is None:
        raise InputError("Nothing was segmented (the dictation affirms no tumor class); fetch the report only.")
    bundle = folder / "result.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        report = json.dumps({"exit_code": result.exit_code, "report": _jsonable(result.report)}, allow_nan=False)
        archive.writestr(REPORT_NAME, report, compress_type=zipfile.ZIP_DEFLATED)
        for number, suffix in enumerate(formats):
            path = write_segmentation(result.segmentation, folder / f"output{number}{suffix}")
            packed = suffix.endswith((".gz", ".seg.nrrd", ".nrrd", ".mha"))  # already compressed by the writer
            archive.write(path, path.name, compress_type=zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED)
            path.unlink()
    return bundle
