"""The Slicer module's engine glue (LoGSAM/LoGSAMSlicer/engine.py) against a real engine process.

The glue imports nothing from Slicer, so it runs here as it runs in the panel: EngineConnection
starts `logsam serve` (this interpreter stands in for PythonSlicer), EngineJob uploads a volume,
is polled as the panel's QTimer polls it, and fetches the label map back. Checked: the label map
that comes back equals the in-process pipeline's; the findings; the early search, then the
reviewed findings sent as a run (the dictated side applies, the search is reused); a
transcription; Cancel; and a killed engine gives a clear "scene unchanged" error, then is
restarted and works again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from LoGSAMLib.errors import Cancelled, ServerConnectionError
from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals as on POSIX")


@pytest.fixture(scope="module")
def glue():
    sys.path.insert(0, str(ROOT / "LoGSAM"))
    try:
        from LoGSAMSlicer import engine
    finally:
        sys.path.remove(str(ROOT / "LoGSAM"))
    return engine


@pytest.fixture(scope="module")
def connection(glue, tiny_models_dir):
    before = os.environ.get("LOGSAM_HOME")
    os.environ["LOGSAM_HOME"] = str(tiny_models_dir)  # the engine process inherits it
    statuses = []
    connection = glue.EngineConnection(str(ROOT), onStatus=lambda state, message: statuses.append(state),
                                       python=sys.executable, serveArgs=["--device", "cpu"])
    try:
        connection.waitReady(timeout=90)
        assert statuses[0] == glue.STARTING and statuses[-1] == glue.READY
        yield connection
    finally:
        connection.stop()
        if before is None:
            os.environ.pop("LOGSAM_HOME", None)
        else:
            os.environ["LOGSAM_HOME"] = before


@pytest.fixture(scope="module")
def phantom():
    return make_phantom([LesionSpec(kind="glioma", radius_mm=14.0, side="left", region="frontal")],
                        spacing=(6.0, 6.0, 8.0), seed=2)


def _box(phantom):
    kji = np.array(np.nonzero(phantom.mask.array > 0), dtype=float)
    lps = (phantom.volume.ijk_to_lps_matrix() @ np.vstack([kji[::-1], np.ones(kji.shape[1])]))[:3]
    return [list(lps.min(axis=1)), list(lps.max(axis=1))]


def _run(glue, connection, submit, fetch, cancel_at_once=False):
    seen, outcome = [], {}
    job = glue.EngineJob(connection, submit, fetch, lambda stage, fraction, message: seen.append(stage),
                         lambda result: outcome.update(result=result),
                         lambda error, details: outcome.update(error=error), pollSeconds=0.05)
    job.start()
    if cancel_at_once:
        job.cancel()
    job.wait(timeout=120)
    assert job.finished and len(outcome) == 1  # exactly one of done / error
    return outcome, seen


def test_a_box_segmentation_round_trip_equals_the_in_process_result(glue, connection, phantom, tiny_home):
    options = {"segmenter": "medsam"}
    box = _box(phantom)
    submit = glue.submitSegment(phantom.volume, connection.volumeSuffix(), box=box, label="glioma",
                                options=connection.jobOptions({**options, "device": "cuda"}))
    outcome, stages = _run(glue, connection, submit, glue.segmentationResult)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert "upload" in stages and "download" in stages  # the transfers report progress
    assert result.segmentation.classes == {1: "glioma"} and result.report["classes"] == ["glioma"]
    assert result.segmentation.labelmap.same_geometry(phantom.volume)

    from LoGSAMLib.pipeline import Pipeline, PipelineOptions

    local = Pipeline(PipelineOptions(segmenter="medsam", device="cpu")).segment_box(
        phantom.volume, box_lps=(tuple(box[0]), tuple(box[1])), label="glioma")
    assert np.array_equal(result.segmentation.labelmap.array, local.segmentation.labelmap.array)
    assert result.segmentation.labelmap.array.any()


def test_findings_and_a_transcription(glue, connection, german_speech):
    findings = connection.client().extract("No meningioma. Enhancing mass consistent with glioma.")
    assert findings["affirmed"] == ["glioma"]
    submit = glue.submitTranscription(german_speech, language="de")
    outcome, stages = _run(glue, connection, submit, glue.transcriptionResult)
    assert "error" not in outcome, outcome.get("error")
    transcript, findings = outcome["result"]["transcript"], outcome["result"]["findings"]
    assert transcript["language"] == "de" and isinstance(transcript["text"], str)
    assert {"affirmed", "negated", "findings"} <= set(findings) and "upload" in stages


def test_the_early_search_then_the_reviewed_findings_as_a_run(glue, connection, phantom):
    findings = connection.client().extract("Enhancing left frontal mass, consistent with glioblastoma.")
    options = {"segmenter": "medsam", "detector_size": 128}
    suffix = connection.volumeSuffix()
    # While the reader checks the findings: the engine's slice search alone (nothing to fetch).
    early, _ = _run(glue, connection, glue.submitEarlySearch(phantom.volume, suffix, ["glioma"], findings, options),
                    None)
    assert early.get("result", {}).get("state") == "done", early
    # Segment: the findings' text as a run, so the dictated side applies; the search is reused.
    submit = glue.submitForClasses(phantom.volume, suffix, ["glioma"], findings, options)
    outcome, _ = _run(glue, connection, submit, glue.segmentationResult)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["result"].report
    assert report["findings"]["affirmed"] == ["glioma"] and report["findings"]["findings"][0]["side"] == "left"
    assert report["options"]["location_prior"] is True and report["classes"] == ["glioma"]
    assert report["search"]["glioma"]["searched_earlier"] is True


def test_cancel_ends_the_job_with_nothing_to_show(glue, connection, phantom):
    findings = {"text": "Glioma.", "affirmed": ["glioma"]}  # the reader ticked another class: by classes
    submit = glue.submitForClasses(phantom.volume, connection.volumeSuffix(), ["meningioma"], findings,
                                   options={"segmenter": "medsam", "search": "dense"})
    outcome, _ = _run(glue, connection, submit, glue.segmentationResult, cancel_at_once=True)
    assert isinstance(outcome.get("error"), Cancelled)


def test_a_killed_engine_is_a_clear_error_then_it_restarts(glue, connection, phantom):
    submit = glue.submitSegment(phantom.volume, connection.volumeSuffix(), classes=["glioma"],
                                options={"segmenter": "medsam", "search": "dense"})
    outcome = {}
    job = glue.EngineJob(connection, submit, glue.segmentationResult, lambda *args: None,
                         lambda result: outcome.update(result=result),
                         lambda error, details: outcome.update(error=error), pollSeconds=0.05).start()
    assert job.jobId is not None
    os.kill(connection._local.pid, signal.SIGKILL)
    time.sleep(0.2)
    job.wait(timeout=30)
    error = outcome.get("error")
    assert isinstance(error, ServerConnectionError), outcome
    assert "job is lost" in str(error) and "scene was not changed" in str(error)
    # The connection restarted the engine (new port and token); the next job works.
    connection.waitReady(timeout=90)
    assert connection.client().extract("Pituitary macroadenoma.")["affirmed"] == ["pituitary"]
