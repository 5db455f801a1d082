"""The Dictation section of the panel (a mixin of ``LoGSAMWidget``): recording stays in Slicer
(sounddevice); the recording or an audio file is transcribed in the engine."""

import os

import qt
import slicer

from . import engine, review
from .common import MAX_RECORDING_SECONDS, _


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
        try:
            audio = recorder.stop()
        except Exception as error:
            slicer.util.errorDisplay(_("Recording failed: {error}").format(error=error), windowTitle=_("LoGSAM"))
        finally:
            self._updateButtons()
        if audio is not None:
            self.ui.dictationStatusLabel.text = _("Recorded {seconds:.1f} s; transcribing…").format(
                seconds=len(audio) / 16000.0)
            self._transcribe(audio)

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
