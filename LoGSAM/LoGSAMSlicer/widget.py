"""The panel. The method runs in the engine (a separate process or a server); the panel sends
jobs there and polls them from the main thread with a QTimer, the only thread that touches widgets
or the MRML scene. Recording stays here (sounddevice); nothing heavy competes with its callback."""

import logging
import os
import time

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import engine, review
from .common import STAGE_NAMES, SUPPORTED_CLASSES, _
from .dictationsection import DictationSectionMixin
from .logic import LoGSAMLogic
from .modelsection import ModelsSectionMixin
from .segmentsection import SegmentSectionMixin
from .settingsection import EngineSettingsMixin

# Share of the progress bar each stage of a job fills: (start, end).
STAGE_SPANS = {"upload": (0.0, 0.05), "queued": (0.05, 0.05), "read": (0.05, 0.07), "load": (0.07, 0.1),
               "asr": (0.1, 0.9), "detect": (0.1, 0.7), "segment": (0.7, 0.95), "download": (0.95, 1.0)}


class LoGSAMWidget(DictationSectionMixin, SegmentSectionMixin, ModelsSectionMixin, EngineSettingsMixin,
                   ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: LoGSAMLogic | None = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None  # EngineJob (engine work) or slicer_bridge.BackgroundJob (model files) while it runs
        self._threadJobs = []  # BackgroundJobs started here, joined in cleanup()
        self._jobKind = ""
        self._jobProgressBar = None
        self._early = None  # (key, EngineJob): the engine's search started while the findings are read
        self._pendingAction = None  # what to do once the engine is ready
        self._recorder = None
        self._live = None  # LoGSAMLib.asr.live.LiveTranscriber (passes in the engine) while recording
        self._liveTried = False
        self._liveFedAt = 0.0
        self._findings = None  # the engine's findings dict of self._reviewedText
        self._reviewedText = None
        self._crossCheck = None
        self._reviewNotes = ""
        self._report = None
        self._devicesListed = False
        self._modelsListed = False

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LoGSAM.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LoGSAMLogic()
        self.logic.connection.onStatus = self._onEngineStatus

        self._jobTimer = qt.QTimer()
        self._jobTimer.setInterval(100)
        self._jobTimer.connect("timeout()", self._pollJob)
        self._recordTimer = qt.QTimer()
        self._recordTimer.setInterval(100)
        self._recordTimer.connect("timeout()", self._updateRecordingDisplay)
        self._engineTimer = qt.QTimer()
        self._engineTimer.setInterval(250)
        self._engineTimer.connect("timeout()", self._pollEngine)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        ui = self.ui
        ui.recordButton.connect("clicked(bool)", self.onRecord)
        ui.stopButton.connect("clicked(bool)", self.onStopRecording)
        ui.refreshDevicesButton.connect("clicked(bool)", self.refreshAudioDevices)
        ui.loadAudioButton.connect("clicked(bool)", self.onLoadAudio)
        ui.reviewButton.connect("clicked(bool)", self.onReview)
        ui.reanalyzeButton.connect("clicked(bool)", self.onReview)
        ui.segmentButton.connect("clicked(bool)", self.onSegment)
        ui.segmentBoxButton.connect("clicked(bool)", self.onSegmentBox)
        ui.cancelButton.connect("clicked(bool)", self.onCancel)
        ui.exportButton.connect("clicked(bool)", self.onExport)
        ui.copyReportButton.connect("clicked(bool)", self.onCopyReport)
        ui.crossCheckConfirmCheckBox.connect("toggled(bool)", lambda checked: self._updateButtons())
        ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        ui.downloadModelButton.connect("clicked(bool)", self.onDownloadModel)
        ui.verifyModelsButton.connect("clicked(bool)", self.onVerifyModels)
        ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        ui.clearModelButton.connect("clicked(bool)", self.onRemoveModel)
        ui.openCacheFolderButton.connect("clicked(bool)", self.onOpenCacheFolder)
        ui.modelsTable.connect("itemSelectionChanged()", self._updateButtons)
        ui.reviewCollapsibleButton.connect("contentsCollapsed(bool)", lambda collapsed: self._updateButtons())
        # Editing the text makes the review stale: Segment waits for a new review.
        ui.dictationTextEdit.connect("textChanged()", self._updateButtons)
        ui.translationTextEdit.connect("textChanged()", self._updateButtons)
        for checkBox in (ui.gliomaCheckBox, ui.meningiomaCheckBox, ui.pituitaryCheckBox):
            checkBox.connect("toggled(bool)", lambda checked: self._updateButtons())
        self.setupEngineSettings()

        ui.audioDeviceComboBox.addItem(_("System default"), -1)
        for table in (ui.findingsTable, ui.modelsTable):
            table.horizontalHeader().setSectionResizeMode(qt.QHeaderView.ResizeToContents)
            table.horizontalHeader().setStretchLastSection(True)
        ui.levelBar.setRange(0, 100)
        ui.progressBar.setRange(0, 100)
        ui.modelsProgressBar.setRange(0, 100)
        ui.reviewCollapsibleButton.collapsed = True

        self.initializeParameterNode()
        self._showFindings(None, None)
        self._showReport(None)
        self._updateButtons()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()
        for timer in (self._jobTimer, self._recordTimer, self._engineTimer):
            timer.stop()
        self._cancelEarly()
        self._closeLive()
        if self._job is not None:
            self._job.cancel()
        for job in self._threadJobs:  # they check the cancel flag between units of work
            job.cancel()
            if not job.wait(5.0):
                logging.warning(f"LoGSAM: {job.name} did not stop within 5 s")
        self._threadJobs = []
        if self._recorder is not None:
            try:
                self._recorder.stop()
            except Exception:  # the stream may already be gone at shutdown
                logging.debug("LoGSAM: recorder stop at cleanup failed", exc_info=True)
            self._recorder = None
        if self.logic is not None:
            self.logic.connection.stop()  # SIGTERM, then kill: the engine process ends with Slicer

    def onReload(self) -> None:
        """Reload the module's parts too (Slicer reloads only LoGSAM.py)."""
        import importlib
        import sys

        order = ("common", "parameters", "mrml", "review", "engine", "dependencies", "sampledata", "logic",
                 "modelsection", "settingsection", "dictationsection", "segmentsection", "selftest", "widget")
        for name in order:  # a part before the parts that import it
            if f"LoGSAMSlicer.{name}" in sys.modules:
                importlib.reload(sys.modules[f"LoGSAMSlicer.{name}"])
        ScriptedLoadableModuleWidget.onReload(self)

    def enter(self) -> None:
        self.initializeParameterNode()
        # Done once when the panel is first shown, not in setup(): creating the widget stays cheap.
        if not self._devicesListed:
            self._devicesListed = True
            self.refreshAudioDevices()
        if not self._modelsListed and self.logic.connection.mode == engine.LOCAL:
            self._modelsListed = True
            self.refreshModels()
        self._updateDependencyStatus()

    def exit(self) -> None:
        # A running job keeps going; its result arrives through the job timer.
        self._disconnectParameterNode()

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode:
            if self._parameterNodeGuiTag is not None:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:
            self._job.cancel()
        self._cancelEarly()
        self._closeLive()
        self.setParameterNode(None)
        self._showFindings(None, None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        self._disconnectParameterNode()
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets with a SlicerParameterName property in the .ui are bound here.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        showTranslation = bool(p and p.translation.strip())
        self.ui.translationLabel.visible = showTranslation
        self.ui.translationTextEdit.visible = showTranslation
        if p and p.spokenLanguage:
            note = _(" (LoGSAM reads the English translation)") if showTranslation else ""
            self.ui.languageLabel.text = _("Language: {language}").format(language=p.spokenLanguage) + note
        else:
            self.ui.languageLabel.text = _("Language: typed text (read as English)")
        self._updateButtons()

    # ------------------------------------------------------------------ state

    def _englishText(self) -> str:
        """The text the findings analysis reads: the translation when there is one."""
        p = self._parameterNode
        if not p:
            return ""
        return p.translation if p.translation.strip() else p.dictation

    def _checkedClasses(self) -> list:
        p = self._parameterNode
        if not p:
            return []
        checked = {"glioma": p.segmentGlioma, "meningioma": p.segmentMeningioma, "pituitary": p.segmentPituitary}
        return [name for name in SUPPORTED_CLASSES if checked[name]]

    def _reviewIsCurrent(self) -> bool:
        return (self._findings is not None and self._reviewedText == self._englishText()
                and not self.ui.reviewCollapsibleButton.collapsed)

    def _segmentBlockers(self, haveVolume: bool, classes: list) -> list:
        reasons = []
        if not haveVolume:
            reasons.append(_("choose an input volume"))
        if self._findings is None or self._reviewedText != self._englishText():
            reasons.append(_("review the findings of the current text"))
        elif self.ui.reviewCollapsibleButton.collapsed:
            reasons.append(_("open the Review section and check the findings"))
        elif not classes:
            reasons.append(_("tick at least one class"))
        if review.crossCheckDisagrees(self._crossCheck) and not self.ui.crossCheckConfirmCheckBox.checked:
            reasons.append(_("compare the original and the translation, then tick the confirmation"))
        return reasons

    def _updateButtons(self, *args) -> None:
        if not hasattr(self, "ui"):
            return
        ui, p = self.ui, self._parameterNode
        busy = self._job is not None
        recording = self._recorder is not None
        idle = not busy and not recording
        haveVolume = bool(p and p.inputVolume)
        haveText = bool(self._englishText().strip())
        classes = self._checkedClasses()

        ui.recordButton.enabled = idle
        ui.stopButton.enabled = recording
        ui.loadAudioButton.enabled = idle
        ui.audioDeviceComboBox.enabled = idle
        ui.reviewButton.enabled = idle and haveText
        ui.reanalyzeButton.enabled = idle and haveText and self._findings is not None
        reasons = self._segmentBlockers(haveVolume, classes)
        ui.segmentButton.enabled = idle and not reasons
        ui.segmentButton.toolTip = (_("Detect and segment: {classes}.").format(classes=", ".join(classes))
                                    if not reasons else _("To segment: {todo}.").format(todo="; ".join(reasons)))
        if self._findings is not None:
            ui.reviewMessageLabel.text = (self._reviewNotes if self._reviewedText == self._englishText()
                                          else _("The text changed since the review: press Re-analyze."))
        ui.segmentBoxButton.enabled = idle and haveVolume and bool(p and p.roiNode)
        ui.cancelButton.enabled = busy
        ui.exportButton.enabled = idle and bool(p and p.outputSegmentation) and haveVolume
        ui.copyReportButton.enabled = bool(ui.reportTextEdit.toPlainText().strip())
        self._updateModelButtons(idle)
        ui.installDependenciesButton.enabled = idle

    # ------------------------------------------------------------------ engine

    def _onEngineStatus(self, state: str, message: str) -> None:
        """The engine's start-up and health, in the status line and under Advanced > Engine."""
        first = message.splitlines()[0] if message else state
        self.ui.engineStatusLabel.text = message or state
        slicer.util.showStatusMessage(first, 5000 if state == engine.READY else 0)
        if state == engine.FAILED and self._pendingAction is not None:
            self._pendingAction = None
            self.ui.advancedCollapsibleButton.collapsed = False
            slicer.util.errorDisplay(message, windowTitle=_("LoGSAM engine"))

    def _startEngine(self) -> None:
        self.logic.connection.start()
        self._engineTimer.start()

    def _pollEngine(self) -> None:
        state = self.logic.connection.poll()
        if state == engine.READY and self._pendingAction is not None:
            action, self._pendingAction = self._pendingAction, None
            action()
        elif state in (engine.FAILED, engine.STOPPED) and self.logic.connection.mode == engine.REMOTE:
            self._engineTimer.stop()

    def _withEngine(self, action) -> None:
        """Run ``action`` now if the engine is ready, else once it is (start-up shown in the status line)."""
        if self.logic.connection.mode == engine.LOCAL and not self._ensureDependencies():
            return  # the engine process runs on Slicer's packages; a server brings its own
        if self.logic.connection.poll() == engine.READY:
            action()
            return
        self._pendingAction = action
        self._startEngine()
        if self.logic.connection.state == engine.READY:
            self._pollEngine()
        elif self.logic.connection.state == engine.STARTING:
            self.ui.stageLabel.text = _("Starting the LoGSAM engine; the request follows when it is ready…")

    # ------------------------------------------------------------------ jobs

    def _startJob(self, kind: str, work, onDone, progressBar=None) -> None:
        """A job on model files in this process (a worker thread; see modelsection)."""
        from LoGSAMLib.slicer_bridge import BackgroundJob

        self._beginJob(kind, progressBar)
        self._job = BackgroundJob(work, self._onJobProgress, lambda result: self._onJobDone(onDone, result),
                                  self._onJobError, name=f"LoGSAM {kind}")
        self._threadJobs = [job for job in self._threadJobs if not job.finished] + [self._job]
        self._job.start()
        self._jobTimer.start()
        self._updateButtons()

    def _startEngineJob(self, kind: str, submit, fetch, onDone) -> None:
        """Upload and queue a job in the engine, then poll it from the job timer."""
        self._beginJob(kind, None)
        self._job = engine.EngineJob(self.logic.connection, submit, fetch, self._onJobProgress,
                                     lambda result: self._onJobDone(onDone, result), self._onJobError,
                                     pump=slicer.app.processEvents)
        self._updateButtons()
        self._jobTimer.start()
        self._job.start()

    def _beginJob(self, kind: str, progressBar) -> None:
        self._jobKind = kind
        self._jobProgressBar = progressBar or self.ui.progressBar
        self._jobProgressBar.value = 0
        self._jobLabel().text = _("Starting…")

    def _pollJob(self) -> None:
        if self._job is not None:
            self._job.poll()
            if self._job is not None and not isinstance(self._job, engine.EngineJob):
                time.sleep(0.03)  # Slicer's idle loop holds the GIL: let the worker thread run a little
        if self._early is not None:
            self._early[1].poll()
        if self._job is None and (self._early is None or self._early[1].finished):
            self._jobTimer.stop()

    def _onJobProgress(self, stage: str, fraction: float, message: str) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if self._jobKind in ("segment", "segmentBox", "transcription") and stage in STAGE_SPANS:
            start, end = STAGE_SPANS[stage]
            fraction = start + (end - start) * fraction
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = int(round(100 * fraction))
        name = _(STAGE_NAMES.get(stage, stage))
        self._jobLabel().text = f"{name}: {message}" if message else name

    def _jobLabel(self):
        """Where the running job reports: the Models box for model jobs, else the Segment section."""
        return self.ui.modelsStatusLabel if self._jobProgressBar is self.ui.modelsProgressBar else self.ui.stageLabel

    def _finishJob(self) -> None:
        self._job = None
        self._updateButtons()

    def _onJobDone(self, onDone, result) -> None:
        self._finishJob()
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = 100
        try:
            with slicer.util.tryWithErrorDisplay(_("LoGSAM could not show the result."), waitCursor=True):
                onDone(result)
        except Exception:  # shown to the user by tryWithErrorDisplay; the panel stays usable
            logging.debug("LoGSAM: showing the result failed", exc_info=True)

    def _onJobError(self, error: BaseException, details: str) -> None:
        from LoGSAMLib.errors import Cancelled, LoGSAMError, ModelMissingError, ServerConnectionError

        kind = self._jobKind
        self._finishJob()
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = 0
        label = self._jobLabel()
        if isinstance(error, Cancelled):
            label.text = _("Cancelled; nothing was changed.")
            return
        label.text = _("Failed: {error}").format(error=str(error).splitlines()[0] if str(error) else error)
        if isinstance(error, ModelMissingError):
            self.ui.advancedCollapsibleButton.collapsed = False
            self.ui.modelsCollapsibleGroupBox.collapsed = False
            self.refreshModels()
            slicer.util.errorDisplay(
                _("{error}\n\nDownload or import the model under Advanced > Models, then try again.").format(
                    error=error), windowTitle=_("LoGSAM: model missing"))
        elif isinstance(error, ServerConnectionError):
            slicer.util.errorDisplay(engine.connectionLostMessage(error) if "scene" not in str(error) else str(error),
                                     windowTitle=_("LoGSAM: engine connection"))
        elif isinstance(error, LoGSAMError):
            slicer.util.errorDisplay(str(error), windowTitle=_("LoGSAM"))
        else:
            logging.error(f"LoGSAM {kind} failed:\n{details}")
            slicer.util.errorDisplay(_("LoGSAM {kind} failed unexpectedly: {error}").format(kind=kind, error=error),
                                     windowTitle=_("LoGSAM"), detailedText=details)

    def onCancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._jobLabel().text = _("Cancelling…")
            self.ui.cancelButton.enabled = False

    # ------------------------------------------------------------------ dependencies

    def _updateDependencyStatus(self) -> list:
        missing = self.logic.missingDependencies()
        self.ui.dependenciesStatusLabel.text = (_("missing: {names}").format(names=", ".join(missing)) if missing
                                                else _("installed"))
        return missing

    def _ensureDependencies(self) -> bool:
        """True when this mode's packages are present; otherwise offers the one-time installation."""
        if not self.logic.missingDependencies():
            return True
        try:
            self.logic.installDependencies(askConfirmation=True)
        except Exception as error:  # installDependencies shows its own problems; this is a safety net
            logging.error("LoGSAM: installing dependencies failed", exc_info=True)
            slicer.util.errorDisplay(_("Installing LoGSAM's dependencies failed: {error}").format(error=error),
                                     windowTitle=_("LoGSAM"))
        return not self._updateDependencyStatus()

    def onInstallDependencies(self) -> None:
        if not self.logic.missingDependencies():
            slicer.util.infoDisplay(_("All of LoGSAM's dependencies are installed."), windowTitle=_("LoGSAM"))
            return
        self._ensureDependencies()

    def onReview(self) -> None:
        text = self._englishText()
        if text.strip():
            self._withEngine(lambda: self._review(text))

    def _review(self, text: str) -> None:
        try:
            findings = self.logic.connection.client().extract(text)
        except Exception as error:
            slicer.util.errorDisplay(_("The findings could not be read: {error}").format(error=error),
                                     windowTitle=_("LoGSAM"))
            return
        self._showFindings(findings, text, review.crossCheck(findings))

    def _showFindings(self, findings, text, crossCheck=None) -> None:
        """Fill the Review section; affirmed classes become the checked ones."""
        self._findings, self._reviewedText, self._crossCheck = findings, text, crossCheck
        review.fillFindingsTable(self.ui.findingsTable, findings)
        warning = review.crossCheckText(crossCheck)
        self.ui.crossCheckLabel.text = warning
        self.ui.crossCheckLabel.visible = bool(warning)
        self.ui.crossCheckConfirmCheckBox.checked = False
        self.ui.crossCheckConfirmCheckBox.visible = bool(warning)
        if findings is None:
            self.ui.reviewMessageLabel.text = ""
            self._updateButtons()
            return
        p = self._parameterNode
        affirmed = findings.get("affirmed") or []
        if p is not None:
            with slicer.util.NodeModify(p.parameterNode):
                p.segmentGlioma = "glioma" in affirmed
                p.segmentMeningioma = "meningioma" in affirmed
                p.segmentPituitary = "pituitary" in affirmed
        self._reviewNotes = review.findingsNotes(findings)
        self.ui.reviewMessageLabel.text = self._reviewNotes
        self.ui.reviewCollapsibleButton.collapsed = False
        self._updateButtons()
        self._startEarlySearch()

    # ------------------------------------------------------------------ export

    def onExport(self) -> None:
        p = self._parameterNode
        suffix = p.exportFormat
        baseName = f"{p.inputVolume.GetName()}-LoGSAM"
        directory = slicer.app.defaultScenePath if hasattr(slicer.app, "defaultScenePath") else ""
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Export segmentation"),
                                              os.path.join(directory, baseName + suffix), f"{suffix} (*{suffix})")
        if not path:
            return
        if not path.lower().endswith(suffix):
            path += suffix
        # Export needs no model packages: SimpleITK ships with Slicer, and .seg.nrrd falls back to Slicer's writer.
        try:
            with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
                models = (self._report or {}).get("models")
                written = self.logic.export(p.outputSegmentation, p.inputVolume, path, models)
                self.ui.stageLabel.text = _("Saved {path}").format(path=written)
        except Exception:  # shown by tryWithErrorDisplay
            logging.debug("LoGSAM: export failed", exc_info=True)
