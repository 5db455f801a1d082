"""Live transcription with its passes in a real `logsam serve` (tiny models, CPU): LiveTranscriber over
RemoteTranscriber, as the Slicer panel runs it while the radiologist dictates."""

from __future__ import annotations

import threading
import time

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
