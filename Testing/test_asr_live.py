"""Live transcription: passes over the growing recording while the radiologist speaks.

Real openai-whisper code on the tiny random-weight checkpoint (nonsense words, real plumbing)
and real espeak-ng speech. Greedy decoding is deterministic, so "the final transcript" can be
compared with a fresh transcription of the same audio.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from LoGSAMLib.asr import DecodeSettings, LiveTranscriber, load_transcriber

SR = 16000
FAST = DecodeSettings(temperatures=(0.0,), sample_len=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def speech(german_speech) -> np.ndarray:
    return german_speech


def silence(seconds: float, seed: int = 0) -> np.ndarray:
    """Room noise well below speech (what a microphone records during a pause)."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 1e-4).astype(np.float32)


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a live pass"
        time.sleep(0.05)


@pytest.fixture
def transcriber(tiny_home):
    return load_transcriber("whisper-base", device="cpu", backend="openai", settings=FAST)


def test_passes_follow_the_recording_and_a_silent_tail_reuses_the_last_one(transcriber, speech):
    loaded_in: list[str] = []
    partials: list[str] = []

    def load():
        loaded_in.append(threading.current_thread().name)
        return transcriber

    live = LiveTranscriber(load, language="de", min_new_seconds=0.5, max_pass_seconds=600,
                           on_partial=lambda t: partials.append(t.text))
    recording = np.concatenate([speech, silence(1.5)])
    heard = len(speech) + SR // 2  # the last pass ends in the pause after the last word
    for end in range(SR, len(speech), SR):  # the dictation arrives second by second
        live.update(recording[:end])
        time.sleep(0.05)
    live.update(recording[:heard])
    wait_until(lambda: live.covered == heard)
    assert loaded_in == ["logsam-live-asr"]  # the model loads in the background, not in the caller
    assert live.passes >= 2 and partials and live.partial.text == partials[-1]

    final = live.finish(recording)  # the radiologist pressed Stop after a silent second
    assert live.reused and final is live.partial
    expected = transcriber.transcribe(recording[:heard], language="de")
    assert (final.text, final.translation) == (expected.text, expected.translation)


def test_voice_after_the_last_pass_means_a_whole_new_pass(transcriber, speech):
    live = LiveTranscriber(transcriber, language="de", min_new_seconds=0.5, max_pass_seconds=600)
    half = len(speech) // 2
    live.update(speech[:half])
    wait_until(lambda: live.covered == half)
    final = live.finish(speech)
    assert not live.reused
    expected = transcriber.transcribe(speech, language="de")
    assert (final.text, final.translation) == (expected.text, expected.translation)


def test_slow_passes_stop_live_transcription(transcriber, speech):
    live = LiveTranscriber(transcriber, language="de", min_new_seconds=0.5, max_pass_seconds=0.0)
    live.update(speech[: 2 * SR])
    wait_until(lambda: live.passes == 1)
    assert live.too_slow
    live.update(speech)  # plenty of new audio, but no new pass starts
    time.sleep(0.5)
    assert live.passes == 1
    final = live.finish(speech)  # the final transcript still covers everything
    assert not live.reused
    assert final.text == transcriber.transcribe(speech, language="de").text


def test_no_speech_yet_is_not_a_partial_and_finish_without_passes_transcribes(transcriber, speech):
    live = LiveTranscriber(transcriber, language="de", min_new_seconds=0.5, max_pass_seconds=600)
    pause = silence(2.0)
    live.update(pause)
    wait_until(lambda: live.passes == 1)
    assert live.partial is None and live.covered == pause.size
    final = live.finish(np.concatenate([pause, speech]))
    assert not live.reused and final.text

    untouched = LiveTranscriber(transcriber, language="de")  # stopped before any update
    assert untouched.finish(speech).text == transcriber.transcribe(speech, language="de").text
    assert not untouched.reused and untouched.passes == 0


def test_passes_can_be_left_to_a_gpu(transcriber, speech):
    live = LiveTranscriber(transcriber, language="de", min_new_seconds=0.5, passes_on_cpu=False)
    live.update(speech)
    wait_until(lambda: live.too_slow)  # the model is on the CPU: loaded, but no pass
    time.sleep(0.3)
    assert live.passes == 0
    assert live.finish(speech).text == transcriber.transcribe(speech, language="de").text


def test_covers_judges_the_tail_by_voice_activity(speech):
    recording = np.concatenate([silence(0.5, seed=1), speech, silence(1.0, seed=2)])
    end_of_speech = int(0.5 * SR) + len(speech)
    assert LiveTranscriber.covers(recording, end_of_speech + SR // 10)
    assert LiveTranscriber.covers(recording, len(recording))
    assert not LiveTranscriber.covers(recording, end_of_speech - SR)
    assert not LiveTranscriber.covers(recording, 0)


def test_close_without_waiting_returns_while_the_model_loads_and_a_load_error_reaches_finish():
    release = threading.Event()

    def slow_failing_load():
        release.wait(10)
        raise RuntimeError("Whisper checkpoint missing")

    live = LiveTranscriber(slow_failing_load)
    live.update(np.zeros(SR, np.float32))
    started = time.monotonic()
    live.close(wait=False)  # e.g. Slicer closing during the model load
    assert time.monotonic() - started < 1.0
    release.set()
    live._worker.join(10)
    assert not live._worker.is_alive() and live.passes == 0 and isinstance(live.error, RuntimeError)
    with pytest.raises(RuntimeError, match="checkpoint missing"):  # finish() loads again and reports it
        live.finish(np.zeros(SR, np.float32))
