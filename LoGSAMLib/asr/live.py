"""Transcription while the radiologist is still speaking (the overlap of speech and ASR).

Whisper reads whole 30 s windows, so live transcription here re-transcribes the growing
recording in a background thread: a pass starts as soon as the previous one has finished and
enough new audio has arrived. The latest pass is shown while dictating (the reader sees what
Whisper heard), and when the radiologist stops it *is* the final transcript if everything
recorded after it is silence (the pause before pressing Stop): no transcription is left to wait
for. If any voice follows it, the whole recording is transcribed once more, so the final
transcript always covers every spoken word — a late "no" is never lost.

Passes only pay off when they are short: after a pass slower than ``max_pass_seconds`` no new
pass starts (``too_slow``), so that stopping never waits long for a pass in flight. On a
2-core CPU a large Whisper is far too slow for this; on a GPU a pass takes about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE, voice_activity
from ..errors import Cancelled, NoSpeechError
from ..types import Transcript

VAD_FRAME_SECONDS = 0.03  # audio.voice_activity's default frame


class LiveTranscriber:
    """Background passes over a growing recording; ``finish`` gives the final transcript.

    ``transcriber``: a :class:`~LoGSAMLib.asr.Transcriber`, or a callable returning one (called
    in the worker thread, so that loading the model overlaps with the dictation too).
    ``on_partial(transcript)`` is called from the worker thread after each pass.
    ``passes_on_cpu=False`` runs no passes when the model is on a CPU (it only loads it).
    """

    def __init__(self, transcriber: Any, language: str | None = None, task_translate: bool = True,
                 min_new_seconds: float = 1.0, max_pass_seconds: float = 3.0,
                 on_partial: Callable[[Transcript], None] | None = None, passes_on_cpu: bool = True) -> None:
        self._get_transcriber = (lambda: transcriber) if hasattr(transcriber, "transcribe") else transcriber
        self.language = language
        self.task_translate = task_translate
        self.min_new_samples = int(min_new_seconds * SAMPLE_RATE)
        self.max_pass_seconds = float(max_pass_seconds)
        self.on_partial = on_partial
        self.passes_on_cpu = passes_on_cpu
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._latest: np.ndarray | None = None
        self._worker: threading.Thread | None = None
        self._transcriber: Any = None
        self.partial: Transcript | None = None  # the latest pass's result (None: no speech yet)
        self.covered = 0  # samples the latest pass transcribed
        self.passes = 0
        self.too_slow = False
        self.error: BaseException | None = None  # a failed pass (finish then transcribes the whole)
        self.reused = False  # whether finish() returned the latest pass instead of a new one

    @property
    def transcriber(self) -> Any:
        """The transcriber once loaded by the worker (``None`` before): e.g. to read its last report."""
        return self._transcriber

    # -- while recording
    def update(self, audio: np.ndarray) -> None:
        """Hand over the recording so far (16 kHz mono float32); returns at once."""
        with self._lock:
            self._latest = audio
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="logsam-live-asr", daemon=True)
            self._worker.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            self._transcriber = self._get_transcriber()
        except BaseException as error:  # noqa: BLE001 - reported by finish(), which loads it again
            self.error = error
            return
        if not self.passes_on_cpu and str(getattr(self._transcriber, "device", "cpu")).startswith("cpu"):
            self.too_slow = True  # a CPU pass would outlast the dictation (see the module docstring)
        while not self._stopping.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            with self._lock:
                audio = self._latest
            if self._stopping.is_set() or self.too_slow or audio is None:
                continue
            if len(audio) - self.covered < self.min_new_samples:
                continue
            started = time.perf_counter()
            try:
                result = self._transcriber.transcribe(audio, language=self.language,
                                                      task_translate=self.task_translate)
            except NoSpeechError:
                result = None  # nothing said yet
            except Cancelled:
                return
            except BaseException as error:  # noqa: BLE001 - finish() falls back to a whole pass
                self.error = error
                return
            self.too_slow = time.perf_counter() - started > self.max_pass_seconds
            with self._lock:
                self.partial, self.covered = result, len(audio)
                self.passes += 1
            if result is not None and self.on_partial is not None:
                self.on_partial(result)

    # -- when the radiologist stops
    def finish(self, audio: np.ndarray, progress: Any = None, cancel: Any = None) -> Transcript:
        """The final transcript of ``audio`` (the whole recording).

        Waits for a pass in flight, then returns it when no voice follows the audio it
        covered; otherwise transcribes the whole recording.
        """
        self.close()
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        with self._lock:
            partial, covered = self.partial, self.covered
        if partial is not None and self.error is None and self.covers(audio, covered):
            self.reused = True
            return partial
        self.reused = False
        transcriber = self._transcriber if self._transcriber is not None else self._get_transcriber()
        return transcriber.transcribe(audio, language=self.language, task_translate=self.task_translate,
                                      progress=progress, cancel=cancel)

    @staticmethod
    def covers(audio: np.ndarray, covered: int) -> bool:
        """True when ``audio[:covered]`` holds every voiced frame of ``audio``.

        Voice activity is judged on the whole recording (its own noise floor), frame by frame.
        """
        if covered >= len(audio):
            return True
        if covered <= 0:
            return False
        active = voice_activity(audio, SAMPLE_RATE, frame_s=VAD_FRAME_SECONDS)
        frame = max(16, int(SAMPLE_RATE * VAD_FRAME_SECONDS))
        return not active[covered // frame:].any()

    def close(self, wait: bool = True) -> None:
        """Stop starting passes; with ``wait``, wait for the pass (or model load) in flight.

        ``wait=False`` when the result no longer matters (a recording thrown away, the
        application closing): the worker is a daemon thread and ends with its pass.
        """
        self._stopping.set()
        self._wake.set()
        worker = self._worker
        if wait and worker is not None and worker is not threading.current_thread():
            worker.join()
