"""Live transcription with its passes in a real `logsam serve` (tiny models, CPU): LiveTranscriber over
RemoteTranscriber, as the Slicer panel runs it while the radiologist dictates."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from test_service import start_server

from LoGSAMLib.asr.live import LiveTranscriber
from LoGSAMLib.audio import SAMPLE_RATE as SR
from LoGSAMLib.audio import write_wav
from LoGSAMLib.service.remote_transcriber import RemoteTranscriber

OPTIONS = {"whisper_model": "whisper-base", "asr_backend": "openai"}


@pytest.fixture(scope="module")
def server(tiny_models_dir, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("live-server"), tiny_models_dir)
    yield srv
    srv.stop()


def silence(seconds: float) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(int(seconds * SR)) * 1e-4).astype(np.float32)


def whole(server, audio: np.ndarray, folder) -> dict:
    """A plain transcription job of the whole recording (what the panel ran before live passes)."""
    return server.client().transcribe(write_wav(folder / "whole.wav", audio), "de", options=OPTIONS)


def test_live_passes_in_the_engine_give_the_plain_transcript(server, german_speech, tmp_path):
    remote = RemoteTranscriber(server.client(), options=OPTIONS)
    assert remote.device == "cpu"  # from health(): the engine's device, not this process's
    partials, threads = [], []

    def on_partial(transcript):
        threads.append(threading.current_thread().name)
        partials.append(transcript)

    live = LiveTranscriber(remote, language="de", min_new_seconds=0.5, max_pass_seconds=600, on_partial=on_partial)
    recording = np.concatenate([german_speech, silence(1.5)])
    heard = len(german_speech) + SR // 2
    live.update(recording[: len(german_speech) // 2])
    deadline = time.monotonic() + 60
    while live.passes < 1:
        assert time.monotonic() < deadline and live.error is None, live.error
        time.sleep(0.05)
    live.update(recording[:heard])
    while live.covered != heard:
        assert time.monotonic() < deadline and live.error is None, live.error
        time.sleep(0.05)
    assert partials and threads == ["logsam-live-asr"] * len(partials)  # never the caller (the panel's main thread)
    assert live.partial is partials[-1]

    final = live.finish(recording)  # Stop after a silent second: the last pass is the transcript
    assert live.reused and final is live.partial
    expected = whole(server, recording[:heard], tmp_path)
    assert (final.text, final.language, final.translation) == (expected["text"], "de", expected["translation"])
    assert remote.last_report is not None and "cross_check" in remote.last_report
    assert remote.last_report["text"] == final.text


def test_voice_after_the_last_pass_means_one_whole_pass_in_the_engine(server, german_speech, tmp_path):
    remote = RemoteTranscriber(server.client(), options=OPTIONS)
    live = LiveTranscriber(remote, language="de", min_new_seconds=0.5, max_pass_seconds=600)
    live.update(german_speech[: len(german_speech) // 2])
    deadline = time.monotonic() + 60
    while live.passes < 1:
        assert time.monotonic() < deadline and live.error is None, live.error
        time.sleep(0.05)
    final = live.finish(german_speech)
    assert not live.reused
    expected = whole(server, german_speech, tmp_path)
    assert (final.text, final.translation) == (expected["text"], expected["translation"])
    assert remote.last_report["text"] == expected["text"]


def test_a_cpu_engine_runs_no_passes_when_they_are_left_to_a_gpu(server, german_speech):
    live = LiveTranscriber(lambda: RemoteTranscriber(server.client(), options=OPTIONS), language="de",
                           min_new_seconds=0.5, passes_on_cpu=False)
    live.update(german_speech)
    deadline = time.monotonic() + 30
    while not live.too_slow:
        assert time.monotonic() < deadline and live.error is None, live.error
        time.sleep(0.05)
    live.close()
    assert live.passes == 0 and live.partial is None


# ------------------------------------------------------------------ the panel (Slicer stand-ins), same server


class FakeRecorder:
    """The recorder as the panel's timer reads it; ``until`` is how much of ``audio`` has been "spoken"."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio, self.until, self.level_db, self.recording = audio, 0, -30.0, True

    @property
    def elapsed(self) -> float:
        return self.until / SR

    def snapshot(self) -> np.ndarray:
        return self.audio[: self.until].copy()

    def stop(self) -> np.ndarray:
        self.recording = False
        return self.audio.copy()


@pytest.fixture
def stand_ins(monkeypatch):
    """The module's parts imported with Slicer stand-ins (as in test_slicer_module), dropped afterwards."""
    from test_slicer_module import _import_module

    pytest.importorskip("vtk")
    _import_module(monkeypatch, "LoGSAM_live_under_test")
    yield
    for key in [k for k in sys.modules if k == "LoGSAMSlicer" or k.startswith("LoGSAMSlicer.")]:
        sys.modules.pop(key, None)


def _panel(server):
    import LoGSAMSlicer.dictationsection as dictation
    import LoGSAMSlicer.engine as glue

    connection = glue.EngineConnection(str(Path(__file__).resolve().parents[1]))
    connection.useRemote(server.url, server.token)
    assert connection.connectRemote() == glue.READY
    label = types.SimpleNamespace

    class Panel(dictation.DictationSectionMixin):
        def __init__(self) -> None:
            self.ui = label(dictationStatusLabel=label(text=""), levelBar=label(value=0), elapsedLabel=label(text=""))
            self.logic = label(connection=connection, pipelineOptions=lambda p: {"language": "de", **OPTIONS})
            self._parameterNode, self._recorder = None, None
            self._live, self._liveTried, self._liveFedAt = None, False, 0.0
            self._recordTimer = label(stop=lambda: None, start=lambda: None)
            self.statuses, self.plain, self.results = [], [], []

        def _updateButtons(self) -> None:
            pass

        def _startJob(self, kind, work, onDone) -> None:  # the BackgroundJob, run to its end here
            from LoGSAMLib.progress import CancelToken

            onDone(work(lambda *args: None, CancelToken()))

        def _transcribe(self, audio) -> None:
            self.plain.append(audio)

        def _onTranscribed(self, result) -> None:
            self.results.append(result)

    return Panel()


def _dictate(panel, recorder: FakeRecorder, until: int, want_partial: bool) -> None:
    """The recording timer's ticks while the radiologist speaks up to ``until``."""
    panel._recorder = recorder
    deadline = time.monotonic() + 60
    while True:
        recorder.until = min(until, recorder.until + SR // 2)
        panel._liveFedAt = 0.0  # every tick feeds (the real timer feeds every LIVE_FEED_SECONDS)
        panel._updateRecordingDisplay()
        live = panel._live
        if live is not None and (live.too_slow or not want_partial) and recorder.until == until:
            return
        if live is not None and live.covered == until and "heard so far" in panel.ui.dictationStatusLabel.text:
            return
        assert time.monotonic() < deadline and (live is None or live.error is None), live and live.error
        time.sleep(0.05)


def test_panel_shows_passes_and_stop_uses_the_last_one(server, german_speech, tmp_path, monkeypatch,
                                                        stand_ins):
    from LoGSAMLib.service.client import EngineClient

    health = EngineClient.health
    monkeypatch.setattr(EngineClient, "health", lambda self: {**health(self), "device": "cuda"})  # a GPU server
    panel = _panel(server)
    recording = np.concatenate([german_speech, silence(1.5)])
    heard = len(german_speech) + SR // 2
    _dictate(panel, FakeRecorder(recording), heard, want_partial=True)
    live = panel._live
    assert live.partial.text.strip()[:20] in panel.ui.dictationStatusLabel.text

    panel.onStopRecording()  # Stop after a silent second
    assert live.reused and panel._live is None and not panel.plain
    [result] = panel.results
    expected = whole(server, recording[:heard], tmp_path)
    assert result["transcript"]["text"] == expected["text"] and "cross_check" in result["transcript"]
    assert result["findings"] == server.client().extract(live.partial.english)


def test_panel_on_a_cpu_engine_runs_no_passes_and_stop_sends_the_plain_job(server, german_speech, stand_ins):
    panel = _panel(server)
    _dictate(panel, FakeRecorder(german_speech), len(german_speech), want_partial=False)
    live = panel._live
    deadline = time.monotonic() + 30
    while not live.too_slow:  # the worker asked the engine's device: cpu
        assert time.monotonic() < deadline, live.error
        time.sleep(0.05)
    panel.onStopRecording()
    assert live.passes == 0 and not panel.results and len(panel.plain) == 1
    assert np.array_equal(panel.plain[0], german_speech)
