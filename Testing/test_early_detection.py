"""Detection that starts when the prompt is known: the background search, its cache key, its
hand-over to ``Pipeline.segment``, cancelling, and `logsam run --confirm` searching while it asks."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from LoGSAMLib.cli import main
from LoGSAMLib.early_detection import DetectionCache, DetectionKey, volume_fingerprint
from LoGSAMLib.errors import Cancelled, ModelMissingError
from LoGSAMLib.pipeline import Pipeline, PipelineOptions
from LoGSAMLib.progress import CancelToken
from LoGSAMLib.search import SearchResult
from LoGSAMLib.testing.doubles import BoxSegmenter, TruthDetector
from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
from LoGSAMLib.types import Volume

FINDINGS_TEXT = "Enhancing mass in the left frontal lobe, consistent with glioblastoma. No meningioma."


class SlowDetector(TruthDetector):
    """The truth detector at a pace one can observe, recording who called it and how many at once."""

    def __init__(self, *args, seconds: float = 0.02, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = seconds
        self.threads: list[str] = []
        self.thresholds: list[float | None] = []
        self.captions: list[str] = []
        self._inside = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def detect(self, images, caption, box_threshold=None, text_threshold=None):
        with self._count:
            self._inside += 1
            self.most_at_once = max(self.most_at_once, self._inside)
        try:
            self.threads.append(threading.current_thread().name)
            self.thresholds.append(box_threshold)
            self.captions.append(caption)
            time.sleep(self.seconds)
            return super().detect(images, caption, box_threshold, text_threshold)
        finally:
            with self._count:
                self._inside -= 1


def wait_for(condition, timeout_s: float = 10.0) -> None:
    """Poll instead of sleeping a fixed time: a loaded machine must not make these tests flaky."""
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left", region="frontal")],
                        spacing=(3.0, 3.0, 3.0), seed=4)


def make_pipeline(phantom, seconds: float = 0.02, **options) -> tuple[Pipeline, SlowDetector]:
    pipe = Pipeline(PipelineOptions(segmenter="litemedsam", device="cpu", **options))
    detector = SlowDetector(pipe, phantom.volume, phantom.instances, seconds=seconds)
    pipe._detector, pipe._segmenter = detector, BoxSegmenter()
    return pipe, detector


@pytest.fixture(scope="module")
def findings():
    return Pipeline().extract(FINDINGS_TEXT)


@pytest.fixture(scope="module")
def fresh(phantom, findings):
    """The result and the number of detector calls without early detection."""
    pipe, detector = make_pipeline(phantom)
    result = pipe.segment(phantom.volume, findings.affirmed, findings)
    assert result.segmentation.mask("glioma").any()
    assert result.report["search"]["glioma"]["searched_earlier"] is False
    return result, detector.calls


def test_segment_after_the_background_search_runs_no_detector(phantom, findings, fresh):
    expected, calls = fresh
    pipe, detector = make_pipeline(phantom)
    early = pipe.start_detection(phantom.volume, findings.affirmed, findings)
    early.wait()
    assert detector.calls == calls
    assert set(detector.threads) == {"logsam-early-detection"}  # the search ran in the background

    result = pipe.segment(phantom.volume, findings.affirmed, findings)
    assert detector.calls == calls  # none more
    assert result.report["search"]["glioma"]["searched_earlier"] is True
    assert result.report["search"]["glioma"]["detector_slices"] == expected.report["search"]["glioma"][
        "detector_slices"]
    np.testing.assert_array_equal(result.segmentation.labelmap.array, expected.segmentation.labelmap.array)
    assert result.report["tracks"] == expected.report["tracks"]


def test_segment_during_the_background_search_waits_for_it(phantom, findings, fresh):
    expected, calls = fresh
    pipe, detector = make_pipeline(phantom, seconds=0.05)
    pipe.start_detection(phantom.volume, findings.affirmed, findings)
    wait_for(lambda: detector.calls > 0)
    assert detector.calls < calls  # started, not finished
    seen = []
    result = pipe.segment(phantom.volume, findings.affirmed, findings,
                          progress=lambda stage, fraction, message="": seen.append((stage, fraction)))
    assert detector.calls == calls  # the search was run once, not twice
    assert detector.most_at_once == 1  # never two detector calls at the same time
    assert set(detector.threads) == {"logsam-early-detection"}
    assert any(stage == "detect" and 0 < fraction < 1 for stage, fraction in seen)  # the wait shows progress
    np.testing.assert_array_equal(result.segmentation.labelmap.array, expected.segmentation.labelmap.array)


def test_another_class_volume_or_threshold_is_searched_afresh(phantom, findings, fresh):
    _, calls = fresh
    pipe, detector = make_pipeline(phantom)
    pipe.start_detection(phantom.volume, ["glioma"], findings).wait()
    assert detector.calls == calls

    # Options that act after detection reuse it.
    pipe.options.location_prior = False
    pipe.options.min_track_slices = 3
    pipe.segment(phantom.volume, ["glioma"], findings)
    assert detector.calls == calls

    # Another class, another caption: searched, with the meningioma caption.
    pipe.segment(phantom.volume, ["meningioma"], findings)
    assert detector.calls > calls and detector.captions[-1] == "meningioma ."

    # The same voxels but one: another volume.
    before = detector.calls
    changed = phantom.volume.array.copy()
    changed[0, 0, 0] += 1
    pipe.segment(Volume(changed, phantom.volume.spacing, phantom.volume.origin, phantom.volume.direction),
                 ["glioma"], findings)
    assert detector.calls > before

    # A threshold changed while the background search runs: it is not used, and the new one is.
    pipe, detector = make_pipeline(phantom, seconds=0.05)
    early = pipe.start_detection(phantom.volume, ["glioma"], findings)
    wait_for(lambda: detector.thresholds)
    pipe.options.box_threshold = 0.5
    result = pipe.segment(phantom.volume, ["glioma"], findings)
    assert early.stopped and early.done
    assert detector.thresholds[0] is None and detector.thresholds[-1] == 0.5
    assert result.report["search"]["glioma"]["searched_earlier"] is False
    assert detector.thresholds.count(0.5) == calls  # the whole search ran with the new threshold
    assert 0 < detector.thresholds.count(None) < calls  # the early search made calls and was stopped


def test_a_class_unticked_during_review_is_dropped_from_the_background_search(phantom, findings):
    pipe, detector = make_pipeline(phantom, seconds=0.05)
    pipe.start_detection(phantom.volume, ["glioma", "meningioma"], findings)
    wait_for(lambda: detector.calls > 0)
    result = pipe.segment(phantom.volume, ["glioma"], findings)
    assert "meningioma ." not in detector.captions
    assert result.report["search"]["glioma"]["searched_earlier"] is True


def test_cancel_detection_stops_at_the_next_detector_call(phantom, findings, fresh):
    _, calls = fresh
    pipe, detector = make_pipeline(phantom, seconds=0.1)
    early = pipe.start_detection(phantom.volume, ["glioma"], findings)
    wait_for(lambda: detector.calls > 0)
    pipe.cancel_detection()
    stopped_at = time.perf_counter()
    wait_for(lambda: early.done)
    assert time.perf_counter() - stopped_at < 1.0  # the call in flight (0.1 s), then it stops
    assert detector.calls < calls
    # what it did not finish is not cached: segment searches again, completely
    before = detector.calls
    result = pipe.segment(phantom.volume, ["glioma"], findings)
    assert result.report["search"]["glioma"]["searched_earlier"] is False
    assert detector.calls - before == calls


def test_cancelling_the_segmentation_while_it_waits_stops_the_background_search(phantom, findings, fresh):
    _, calls = fresh
    pipe, detector = make_pipeline(phantom, seconds=0.1)
    early = pipe.start_detection(phantom.volume, ["glioma"], findings)
    token = CancelToken()

    def progress(stage, fraction, message=""):
        if stage == "detect":
            token.cancel()

    with pytest.raises(Cancelled):
        pipe.segment(phantom.volume, ["glioma"], findings, progress=progress, cancel=token)
    assert early.stopped
    wait_for(lambda: early.done, timeout_s=2.0)
    assert detector.calls < calls


def test_a_failing_background_search_is_reported_by_segment(phantom, findings):
    pipe, detector = make_pipeline(phantom)

    def missing(*args, **kwargs):
        raise ModelMissingError("groundingdino-swint-ogc is not in the model cache.")

    detector.detect = missing
    early = pipe.start_detection(phantom.volume, ["glioma"], findings)
    early.wait()
    assert isinstance(next(iter(early.errors.values())), ModelMissingError)
    with pytest.raises(ModelMissingError):
        pipe.segment(phantom.volume, ["glioma"], findings)


def test_nothing_to_search_starts_nothing(phantom):
    pipe, detector = make_pipeline(phantom)
    assert pipe.start_detection(phantom.volume, []) is None
    assert pipe.start_detection(phantom.volume, ["astrocytoma"]) is None  # unsupported: skipped, no error
    assert detector.calls == 0


def test_volume_fingerprint_covers_voxels_and_geometry(phantom):
    volume = phantom.volume
    same = Volume(volume.array.copy(), volume.spacing, volume.origin, volume.direction)
    assert volume_fingerprint(same) == volume_fingerprint(volume)
    variants = [
        Volume(volume.array.astype(np.float64 if volume.array.dtype == np.float32 else np.float32), volume.spacing,
               volume.origin, volume.direction),
        Volume(volume.array.copy(), (volume.spacing[0] + 0.1, *volume.spacing[1:]), volume.origin, volume.direction),
        Volume(volume.array.copy(), volume.spacing, (volume.origin[0] + 1, *volume.origin[1:]), volume.direction),
        Volume(volume.array.copy(), volume.spacing, volume.origin, volume.direction @ np.diag([-1, 1, 1])),
    ]
    prints = {volume_fingerprint(v) for v in variants}
    assert len(prints) == len(variants) and volume_fingerprint(volume) not in prints
    # a non-contiguous view of the same voxels hashes like a copy of them
    view = volume.array[:, ::-1, :]
    assert volume_fingerprint(Volume(view, volume.spacing, volume.origin, volume.direction)) == volume_fingerprint(
        Volume(np.ascontiguousarray(view), volume.spacing, volume.origin, volume.direction))


def test_cache_keeps_the_most_recently_used_entries():
    cache = DetectionCache(entries=2)
    keys = [DetectionKey("v", "axial", str(n), "glioma .", ()) for n in range(3)]
    for n, key in enumerate(keys[:2]):
        cache.put(key, SearchResult({n: []}, 1))
    assert cache.get(keys[0]) is not None  # used: now the most recent
    cache.put(keys[2], SearchResult({2: []}, 1))
    assert keys[0] in cache and keys[2] in cache and keys[1] not in cache


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    """Thick slices: the tiny random-weight detector finds boxes everywhere, so every slice is searched."""
    from LoGSAMLib.volume import write_volume

    coarse = make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left", region="frontal")],
                          spacing=(4.0, 4.0, 8.0), seed=4)
    path = tmp_path_factory.mktemp("early") / "t1.nii.gz"
    write_volume(coarse.volume, path)
    return path


def _watch_start_detection(monkeypatch) -> list:
    started = []
    original = Pipeline.start_detection

    def watched(self, *args, **kwargs):
        early = original(self, *args, **kwargs)
        started.append(early)
        return early

    monkeypatch.setattr(Pipeline, "start_detection", watched)
    return started


def test_cli_run_confirm_searches_while_it_asks(tiny_home, phantom_file, tmp_path, monkeypatch):
    from LoGSAMLib.cli import run_cmd

    started = _watch_start_detection(monkeypatch)
    asked = []

    def ask(question: str) -> bool:
        assert started and started[0] is not None, "detection had not started when the question was asked"
        started[0].wait()  # the reader takes their time; the search finishes meanwhile
        asked.append(question)
        return True

    monkeypatch.setattr(run_cmd, "_ask", ask)
    report_path = tmp_path / "r.json"
    code = main(["run", str(phantom_file), "--text", FINDINGS_TEXT, "--confirm", "--segmenter", "medsam",
                 "--device", "cpu", "-o", str(tmp_path / "seg.nii.gz"), "--report", str(report_path)])
    assert code == 0 and asked == ["Segment glioma? [y/N] "]
    report = json.loads(report_path.read_text())
    assert report["search"]["glioma"]["searched_earlier"] is True
    assert report["search"]["glioma"]["detector_slices"] > 0


def test_cli_run_confirm_declined_stops_the_search_and_writes_nothing(tiny_home, phantom_file, tmp_path,
                                                                     monkeypatch):
    from LoGSAMLib.cli import run_cmd

    started = _watch_start_detection(monkeypatch)
    monkeypatch.setattr(run_cmd, "_ask", lambda question: False)
    out = tmp_path / "seg.nii.gz"
    code = main(["run", str(phantom_file), "--text", FINDINGS_TEXT, "--confirm", "--segmenter", "medsam",
                 "--device", "cpu", "-o", str(out)])
    assert code == 1 and not out.exists()
    assert started and started[0].stopped
    started[0].wait()
