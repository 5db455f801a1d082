"""The Dictation section of the panel (a mixin of ``LoGSAMWidget``): recording stays in Slicer
(sounddevice); the recording or an audio file is transcribed in the engine.

Live transcription: while recording, once the engine is ready, a ``LiveTranscriber`` sends the growing
recording to the engine in passes (``RemoteTranscriber``: each pass is a transcription job; its worker
thread only waits on the network) and the latest pass is shown in the status line. Passes run only
on a GPU engine. At Stop its ``finish`` gives the transcript (the last pass when only silence followed);
any failure falls back to the plain transcription job.
"""

import logging
import os
import time

import qt
import slicer

from . import engine, review
from .common import LIVE_FEED_SECONDS, MAX_RECORDING_SECONDS, _


class DictationSectionMixin:
    """Needs the widget's ``ui``, ``logic``, parameter node and job helpers."""

    def refreshAudioDevices(self) -> None:
        combo = self.ui.audioDeviceComboBox
        previous = combo.itemData(combo.currentIndex)
        while combo.count > 1:  # keep "System default"
            combo.removeItem(1)
        try:
            from LoGSAMLib.audio import list_input_devices

            devices = list_input_devices()
        except Exception as error:  # sounddevice not installed yet, or no PortAudio
            combo.setToolTip(_("No device list: {error}").format(error=error))
            return
        for device in devices:
            combo.addItem(f"{device['name']} ({device.get('hostapi', '')})", int(device["index"]))
            if int(device["index"]) == previous:
                combo.currentIndex = combo.count - 1

    def onRecord(self) -> None:
        if not self._ensureDependencies():
            return
        index = self.ui.audioDeviceComboBox.itemData(self.ui.audioDeviceComboBox.currentIndex)
        device = None if index is None or int(index) < 0 else int(index)
        self._cancelEarly()  # the new dictation decides what to search
        self._closeLive()
        if self.logic.connection.mode == engine.LOCAL:
            self._startEngine()  # the engine starts while the radiologist speaks
        try:
            from LoGSAMLib.audio import Recorder

            recorder = Recorder(device=device, max_seconds=MAX_RECORDING_SECONDS)
            recorder.start()
            self._recorder = recorder
            self._recordTimer.start()
            self.ui.dictationStatusLabel.text = _("Recording… press Stop when done.")
        except Exception as error:
            slicer.util.errorDisplay(_("Recording could not start: {error}").format(error=error),
                                     windowTitle=_("LoGSAM"))
        finally:
            self._updateButtons()

    def _updateRecordingDisplay(self) -> None:
        recorder = self._recorder
        if recorder is None:
            self._recordTimer.stop()
            return
        self.ui.levelBar.value = self._levelPercent(recorder)
        self._feedLive(recorder)
        seconds = float(recorder.elapsed)
        self.ui.elapsedLabel.text = f"{int(seconds // 60)}:{int(seconds % 60):02d}"
        if seconds >= MAX_RECORDING_SECONDS or not getattr(recorder, "recording", True):
            self.onStopRecording()  # the recorder stops by itself at its maximum length

    @staticmethod
    def _levelPercent(recorder) -> int:
        """Meter position: RMS level in dBFS over a 60 dB range (reads like a mixer's meter)."""
        level_db = getattr(recorder, "level_db", None)
        if level_db is not None and level_db == level_db:  # not NaN
            return int(round(100 * min(1.0, max(0.0, (float(level_db) + 60.0) / 60.0))))
        return int(round(100 * min(1.0, max(0.0, float(recorder.level)))))

    def onStopRecording(self) -> None:
        recorder, self._recorder = self._recorder, None
        self._recordTimer.stop()
        self.ui.levelBar.value = 0
        if recorder is None:
            return
        audio = None
        live, self._live = self._live, None
        try:
            audio = recorder.stop()
        except Exception as error:
            slicer.util.errorDisplay(_("Recording failed: {error}").format(error=error), windowTitle=_("LoGSAM"))
        finally:
            self._updateButtons()
        if audio is not None:
            self.ui.dictationStatusLabel.text = _("Recorded {seconds:.1f} s; transcribing…").format(
                seconds=len(audio) / 16000.0)
            if live is not None and live.partial is not None and live.error is None:
                self._finishLive(live, audio)
                return
            self._transcribe(audio)
        if live is not None:
            live.close(wait=False)  # no pass to reuse: the transcription job (progress, Cancel) does it all

    # ------------------------------------------------------------------ live transcription

    def _feedLive(self, recorder) -> None:
        """From the recording timer: start live transcription once the engine is ready, hand it the
        recording so far every ``LIVE_FEED_SECONDS``, and show the latest pass."""
        if self._live is None and not self._liveTried and self.logic.connection.state == engine.READY:
            self._liveTried = True
            self._live = self._startLive()
        live = self._live
        if live is None or time.monotonic() - self._liveFedAt < LIVE_FEED_SECONDS:
            return
        self._liveFedAt = time.monotonic()
        live.update(recorder.snapshot())
        if live.partial is not None:
            heard = live.partial.text.strip()
            self.ui.dictationStatusLabel.text = _("Recording… heard so far: {text}").format(
                text=heard if len(heard) <= 120 else "…" + heard[-119:])

    def _startLive(self):
        try:
            from LoGSAMLib.asr.live import LiveTranscriber
            from LoGSAMLib.service.remote_transcriber import RemoteTranscriber

            client = self.logic.connection.client()
            options = self.logic.pipelineOptions(self._parameterNode)
            jobOptions = self.logic.connection.jobOptions(options)
            # the engine's device is asked in the worker thread; a CPU engine gets no passes (too slow)
            return LiveTranscriber(lambda: RemoteTranscriber(client, options=jobOptions),
                                   language=options.get("language"), passes_on_cpu=False)
        except Exception:  # live transcription is a convenience: recording goes on without it
            logging.warning("LoGSAM: live transcription unavailable", exc_info=True)
            return None

    def _finishLive(self, live, audio) -> None:
        """The final transcript from the live passes, in a worker thread (it may wait for a pass in
        flight, or run one whole pass in the engine); on any failure, the plain transcription job."""
        from LoGSAMLib.errors import Cancelled

        def work(progress, cancel):
            try:
                transcript = live.finish(audio, progress=progress, cancel=cancel)
                remote = live.transcriber  # the RemoteTranscriber: its last report has the cross-check
                report = remote.last_report
                report = report if report and report.get("text") == transcript.text else transcript.to_dict()
                return {"transcript": report, "findings": remote.client.extract(transcript.english)}
            except Cancelled:
                raise
            except Exception:  # noqa: BLE001 - the plain job transcribes the recording again
                logging.warning("LoGSAM: live transcription failed; transcribing the recording", exc_info=True)
                return None

        def done(result) -> None:
            if result is None:
                self._transcribe(audio)
            else:
                self._onTranscribed(result)

        self._startJob("transcription", work, done)

    def _closeLive(self) -> None:
        """A new recording, a closed scene, Slicer closing: the passes no longer matter."""
        live, self._live = self._live, None
        self._liveTried, self._liveFedAt = False, 0.0
        if live is not None:
            live.close(wait=False)  # never block the GUI on a pass in flight

    def onLoadAudio(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), _("Load dictation audio"), "",
            _("Audio files (*.wav *.flac *.mp3 *.ogg *.m4a *.webm);;All files (*)"))
        if not path:
            return
        self._cancelEarly()
        self.ui.dictationStatusLabel.text = _("Transcribing {name}…").format(name=os.path.basename(path))
        self._transcribe(path)

    def _transcribe(self, audio) -> None:
        options = self.logic.pipelineOptions(self._parameterNode)
        submit = engine.submitTranscription(audio, options.get("language"), self.logic.connection.jobOptions(options))
        self._withEngine(lambda: self._startEngineJob("transcription", submit, engine.transcriptionResult,
                                                      self._onTranscribed))

    def _onTranscribed(self, result: dict) -> None:
        transcript, findings = result["transcript"], result["findings"]
        p = self._parameterNode
        if p is None:  # the scene was closed meanwhile
            return
        with slicer.util.NodeModify(p.parameterNode):
            p.dictation = transcript.get("text") or ""
            p.translation = transcript.get("translation") or ""
            p.spokenLanguage = transcript.get("language") or ""
        self.ui.dictationStatusLabel.text = _("Transcribed ({language}).").format(language=transcript.get("language"))
        self.ui.stageLabel.text = ""
        self._showFindings(findings, self._englishText(), review.crossCheck(findings, transcript))
