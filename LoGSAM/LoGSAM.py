"""LoGSAM: a spoken (or typed) radiology report -> a brain-tumor segmentation, in 3D Slicer.

This module is a thin adapter. All the method (Whisper, the negation-aware NLP, Grounding DINO
with the LoGSAM LoRA adapter, MedSAM / LiteMedSAM) lives in the pure-Python engine
``LoGSAMLib``; the module converts MRML nodes to arrays plus geometry, runs the engine off the
GUI thread, and turns its results back into MRML nodes. Heavy packages (torch, transformers,
whisper, spaCy) are imported only when the work starts, never when Slicer loads the module.
"""

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import (
    Choice,
    GuiConnector,
    WithinRange,
    parameterNodeGuiConnector,
    parameterNodeWrapper,
)
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without the i18n helpers

    def _(text: str) -> str:
        return text

    def translate(context: str, text: str) -> str:
        return text


if TYPE_CHECKING:  # names for annotations only; the engine is imported where it is used
    from LoGSAMLib.pipeline import Pipeline, PipelineOptions, PipelineResult
    from LoGSAMLib.types import Findings, Volume


def _ensureEngineImportable() -> None:
    """Make ``import LoGSAMLib`` work from a development checkout too.

    In the installed extension the engine sits next to this file (see LoGSAM/CMakeLists.txt),
    and Slicer puts this folder on sys.path. When Slicer runs this file straight from the
    repository (Additional module paths = <repo>/LoGSAM), the engine is one folder up.
    """
    import importlib.util

    if importlib.util.find_spec("LoGSAMLib") is not None:
        return
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(repository, "LoGSAMLib", "__init__.py")):
        sys.path.insert(0, repository)


_ensureEngineImportable()

SUPPORTED_CLASSES = ("glioma", "meningioma", "pituitary")
WHISPER_MODELS = ("auto", "whisper-large-v3", "whisper-large-v3-turbo", "whisper-medium", "whisper-small",
                  "whisper-base", "whisper-tiny")
LANGUAGES = ("auto", "en", "de", "fr", "es", "it", "nl", "pt", "pl", "tr", "zh", "ja", "ar")
EXPORT_FORMATS = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd")
MAX_RECORDING_SECONDS = 300.0
LIVE_FEED_SECONDS = 0.5  # how often the recording so far is handed to live transcription
TORCH_REQUIREMENT = ">=2.1"
# Slicer's own brain tumor samples (same URLs and checksums as Slicer's SampleData module).
SAMPLE_DATA = (
    ("MRBrainTumor1", "RegLib_C01_1.nrrd", "998cb522173839c78657f4bc0ea907cea09fd04e44601f17c82ea27927937b95"),
    ("MRBrainTumor2", "RegLib_C01_2.nrrd", "1a64f3f422eb3d1c9b093d1a18da354b13bcf307907c66317e2463ee530b7a97"),
)
# Models the typed-dictation path (detect + segment) needs; Whisper is only needed for audio.
DETECTION_MODELS = ("groundingdino-swint-ogc", "bert-base-uncased", "logsam-lora-dino")
SEGMENTER_MODELS = {"medsam": "medsam-vit-b", "litemedsam": "litemedsam"}
CLASS_TAG = "LoGSAM.Class"  # segment tag holding the engine's class name (as outputs.py writes it)

HELP_TEXT = """
<p>Speak or type a radiology report over a brain MRI; LoGSAM segments the tumor it describes
(glioma, meningioma or pituitary adenoma).</p>
<p><b>Quick start</b></p>
<ol>
<li><b>Advanced &gt; Install dependencies</b> once (PyTorch comes from the PyTorch extension), then
download the models listed under <b>Advanced &gt; Models</b> (sizes are shown; nothing downloads by itself).</li>
<li>Load a brain MRI, e.g. <i>MRBrainTumor1</i> from the Sample Data module (LoGSAM category), and
pick it as the <b>Input volume</b>.</li>
<li><b>Dictation</b>: press <b>Record</b>, speak the report, press <b>Stop</b> (or <b>Load audio file</b>,
or type the report in English), then <b>Review findings</b>.</li>
<li><b>Review</b>: check the transcript, the translation and the findings table. Negated classes are not
segmented; tick or untick classes if the analysis is wrong. Segmenting is possible only once this
review is shown.</li>
<li><b>Segment</b>: one segment per class is created in the output segmentation (or in a new one). If the
detector misses the tumor, place an ROI around it and press <b>Segment in box</b>.</li>
<li><b>Export</b> the result as a NIfTI or NRRD label map or a .seg.nrrd segmentation.</li>
</ol>
<p>Research software: not for clinical use. Review every result.</p>
"""

ACKNOWLEDGEMENT_TEXT = """
<p>LoGSAM implements the method of: M. R. I. Bhuiyan, S. Bhat, M. Qahqaie, T.-T. Nguyen,
P. A. Pérez Toro, T. Arias Vergara, A. Maier. <i>LoGSAM: Parameter-Efficient Cross-Modal Grounding
for MRI Segmentation.</i> arXiv:2603.17576, 2026.
(<a href="https://arxiv.org/abs/2603.17576">arXiv</a>,
<a href="https://github.com/robayet002/LoGSAM">reference code</a>)</p>
<p>It uses Whisper (OpenAI), spaCy and negspaCy, Grounding DINO (IDEA Research), MedSAM and LiteMedSAM
(Ma et al.); see the README for the licenses and citations of each model.</p>
"""


#
# LoGSAM
#


class LoGSAM(ScriptedLoadableModule):
    """Module description. Nothing heavy happens here: Slicer creates this at startup."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LoGSAM")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []  # PyTorch is an extension dependency, checked when needed
        self.parent.contributors = ["LoGSAM developers"]
        self.parent.helpText = _(HELP_TEXT)
        self.parent.acknowledgementText = _(ACKNOWLEDGEMENT_TEXT)
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData() -> None:
    """Add Slicer's brain tumor samples under a LoGSAM category of the Sample Data module."""
    import SampleData

    testingDataUrl = getattr(slicer.util, "TESTING_DATA_URL",
                             "https://github.com/Slicer/SlicerTestingData/releases/download/")
    icon = os.path.join(os.path.dirname(__file__), "Resources", "Icons", "LoGSAM.png")
    for name, fileName, sha256 in SAMPLE_DATA:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="LoGSAM",
            sampleName=name,
            thumbnailFileName=icon,
            uris=f"{testingDataUrl}SHA256/{sha256}",
            fileNames=fileName,
            nodeNames=name,
            checksums=f"SHA256:{sha256}",
        )


#
# Parameter node
#


def _unannotated(datatype: Any) -> Any:
    return get_args(datatype)[0] if get_origin(datatype) is Annotated else datatype


@parameterNodeGuiConnector
class QPlainTextEditToStrConnector(GuiConnector):
    """Binds a QPlainTextEdit to a str parameter (Slicer ships one for QTextEdit only).

    It writes to the widget only when the text differs: the parameter node echoes every
    keystroke back, and re-setting identical text would move the cursor to the start.
    """

    @staticmethod
    def canRepresent(widget, datatype) -> bool:
        return type(widget) is qt.QPlainTextEdit and _unannotated(datatype) is str

    @staticmethod
    def create(widget, datatype):
        if QPlainTextEditToStrConnector.canRepresent(widget, datatype):
            return QPlainTextEditToStrConnector(widget)
        return None

    def __init__(self, widget):
        super().__init__()
        self._widget = widget

    def _connect(self):
        self._widget.textChanged.connect(self.changed)

    def _disconnect(self):
        self._widget.textChanged.disconnect(self.changed)

    def widget(self):
        return self._widget

    def read(self) -> str:
        return self._widget.toPlainText()

    def write(self, value: str) -> None:
        if self._widget.toPlainText() != value:
            self._widget.setPlainText(value)


@parameterNodeWrapper
class LoGSAMParameterNode:
    """Everything the panel shows that should survive saving and reloading the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roiNode: vtkMRMLMarkupsROINode
    boxClass: Annotated[str, Choice(list(SUPPORTED_CLASSES))] = "glioma"
    dictation: str = ""  # what was said (spoken language) or typed (English)
    translation: str = ""  # Whisper's English translation of a non-English dictation
    spokenLanguage: str = ""  # detected language code of the last transcription
    segmentGlioma: bool = False
    segmentMeningioma: bool = False
    segmentPituitary: bool = False
    whisperModel: Annotated[str, Choice(list(WHISPER_MODELS))] = "auto"
    language: Annotated[str, Choice(list(LANGUAGES))] = "auto"
    segmenter: Annotated[str, Choice(["auto", "medsam", "litemedsam"])] = "auto"
    plane: Annotated[str, Choice(["axial", "coronal", "sagittal"])] = "axial"
    boxThreshold: Annotated[float, WithinRange(0.0, 1.0)] = 0.0  # 0: the detector's default
    textThreshold: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    device: Annotated[str, Choice(["auto", "cpu", "cuda", "mps"])] = "auto"
    exportFormat: Annotated[str, Choice(list(EXPORT_FORMATS))] = ".nii.gz"


#
# LoGSAMWidget
#


STAGE_NAMES = {"asr": "Transcribing", "nlp": "Reading the findings", "detect": "Detecting",
               "segment": "Segmenting", "download": "Downloading", "load": "Loading models",
               "verify": "Verifying", "import": "Importing"}


class LoGSAMWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel. Long work runs in a worker thread; a QTimer brings its progress and result
    back to the main thread, the only thread that touches widgets or the MRML scene."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: LoGSAMLogic | None = None
        self._parameterNode: LoGSAMParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._job = None  # LoGSAMLib.slicer_bridge.BackgroundJob while work runs
        self._jobKind = ""
        self._jobProgressBar = None
        self._recorder = None
        self._live = None  # LoGSAMLib.asr.LiveTranscriber while recording
        self._liveFedAt = 0.0
        self._findings: Findings | None = None
        self._reviewedText: str | None = None  # the English text self._findings was computed from
        self._reviewNotes = ""
        self._devicesListed = False
        self._modelsListed = False

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LoGSAM.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LoGSAMLogic()

        self._jobTimer = qt.QTimer()
        self._jobTimer.setInterval(100)
        self._jobTimer.connect("timeout()", self._pollJob)
        self._recordTimer = qt.QTimer()
        self._recordTimer.setInterval(100)
        self._recordTimer.connect("timeout()", self._updateRecordingDisplay)

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
        self._updateButtons()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()
        if self._job is not None:
            self._job.cancel()
        self._jobTimer.stop()
        self._recordTimer.stop()
        if self._recorder is not None:
            try:
                self._recorder.stop()
            except Exception:  # the stream may already be gone at shutdown
                logging.debug("LoGSAM: recorder stop at cleanup failed", exc_info=True)
            self._recorder = None
        self._closeLive()
        if self.logic is not None:
            self.logic.cancelEarlyDetection()

    def enter(self) -> None:
        self.initializeParameterNode()
        # Done once when the panel is first shown, not in setup(): creating the widget stays cheap.
        if not self._devicesListed:
            self._devicesListed = True
            self.refreshAudioDevices()
        if not self._modelsListed:
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
        if self.logic is not None:
            self.logic.cancelEarlyDetection()
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

    def setParameterNode(self, inputParameterNode: LoGSAMParameterNode | None) -> None:
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

        reasons = []
        if not haveVolume:
            reasons.append(_("choose an input volume"))
        if self._findings is None or self._reviewedText != self._englishText():
            reasons.append(_("review the findings of the current text"))
        elif ui.reviewCollapsibleButton.collapsed:
            reasons.append(_("open the Review section and check the findings"))
        elif not classes:
            reasons.append(_("tick at least one class"))
        ui.segmentButton.enabled = idle and not reasons
        ui.segmentButton.toolTip = (_("Detect and segment: {classes}.").format(classes=", ".join(classes))
                                    if not reasons else _("To segment: {todo}.").format(todo="; ".join(reasons)))
        if self._findings is not None:
            ui.reviewMessageLabel.text = (self._reviewNotes if self._reviewedText == self._englishText()
                                          else _("The text changed since the review: press Re-analyze."))
        ui.segmentBoxButton.enabled = idle and haveVolume and bool(p and p.roiNode)
        ui.cancelButton.enabled = busy
        ui.exportButton.enabled = idle and bool(p and p.outputSegmentation) and haveVolume
        selected = self._selectedModelId() is not None
        for button in (ui.downloadModelButton, ui.importModelButton, ui.clearModelButton):
            button.enabled = idle and selected
        ui.verifyModelsButton.enabled = idle
        ui.installDependenciesButton.enabled = idle

    # ------------------------------------------------------------------ background jobs

    def _startJob(self, kind: str, work, onDone, progressBar=None) -> None:
        from LoGSAMLib.slicer_bridge import BackgroundJob

        self._jobKind = kind
        self._jobProgressBar = progressBar or self.ui.progressBar
        self._jobProgressBar.value = 0
        self._jobLabel().text = _("Starting…")
        self._job = BackgroundJob(work, self._onJobProgress, lambda result: self._onJobDone(onDone, result),
                                  self._onJobError, name=f"LoGSAM {kind}")
        self._job.start()
        self._jobTimer.start()
        self._updateButtons()

    def _pollJob(self) -> None:
        if self._job is not None:
            self._job.poll()

    def _overallFraction(self, stage: str, fraction: float) -> float:
        fraction = min(1.0, max(0.0, fraction))
        if self._jobKind in ("segment", "segmentBox"):
            # detection is the long part of a dictation run; box mode only segments
            if stage == "detect":
                return 0.7 * fraction
            if stage == "segment" and self._jobKind == "segment":
                return 0.7 + 0.3 * fraction
        return fraction

    def _onJobProgress(self, stage: str, fraction: float, message: str) -> None:
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = int(round(100 * self._overallFraction(stage, fraction)))
        name = _(STAGE_NAMES.get(stage, stage))
        self._jobLabel().text = f"{name}: {message}" if message else name

    def _jobLabel(self):
        """Where the running job reports: the Models box for model jobs, else the Segment section."""
        return self.ui.modelsStatusLabel if self._jobProgressBar is self.ui.modelsProgressBar else self.ui.stageLabel

    def _finishJob(self) -> None:
        self._jobTimer.stop()
        self._job = None
        self._updateButtons()

    def _onJobDone(self, onDone, result) -> None:
        self._finishJob()
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = 100
        with slicer.util.tryWithErrorDisplay(_("LoGSAM could not show the result."), waitCursor=True):
            onDone(result)

    def _onJobError(self, error: BaseException, details: str) -> None:
        from LoGSAMLib.errors import Cancelled, LoGSAMError, ModelMissingError

        kind = self._jobKind
        self._finishJob()
        if self._jobProgressBar is not None:
            self._jobProgressBar.value = 0
        label = self._jobLabel()
        if isinstance(error, Cancelled):
            label.text = _("Cancelled; nothing was changed.")
            return
        label.text = _("Failed: {error}").format(error=error)
        if isinstance(error, ModelMissingError):
            self.ui.advancedCollapsibleButton.collapsed = False
            self.ui.modelsCollapsibleGroupBox.collapsed = False
            self.refreshModels()
            slicer.util.errorDisplay(
                _("{error}\n\nDownload or import the model under Advanced > Models, then try again.").format(
                    error=error), windowTitle=_("LoGSAM: model missing"))
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
        if missing:
            self.ui.dependenciesStatusLabel.text = _("missing: {names}").format(names=", ".join(missing))
        else:
            self.ui.dependenciesStatusLabel.text = _("installed")
        return missing

    def _ensureDependencies(self) -> bool:
        """True when the engine can run; otherwise offers the one-time installation."""
        if not self.logic.missingDependencies():
            return True
        with slicer.util.tryWithErrorDisplay(_("Installing LoGSAM's dependencies failed."), waitCursor=False):
            self.logic.installDependencies(askConfirmation=True)
        return not self._updateDependencyStatus()

    def onInstallDependencies(self) -> None:
        if not self.logic.missingDependencies():
            slicer.util.infoDisplay(_("All of LoGSAM's dependencies are installed."), windowTitle=_("LoGSAM"))
            return
        self._ensureDependencies()

    # ------------------------------------------------------------------ dictation

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
        from LoGSAMLib.audio import Recorder

        index = self.ui.audioDeviceComboBox.itemData(self.ui.audioDeviceComboBox.currentIndex)
        device = None if index is None or int(index) < 0 else int(index)
        self.logic.cancelEarlyDetection()  # the new dictation decides what to search
        with slicer.util.tryWithErrorDisplay(_("Recording could not start."), waitCursor=True):
            recorder = Recorder(device=device, max_seconds=MAX_RECORDING_SECONDS)
            recorder.start()
            self._recorder = recorder
            self._live = self._startLive()
            self._recordTimer.start()
            self.ui.dictationStatusLabel.text = _("Recording… press Stop when done.")
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

    def _startLive(self):
        """Load Whisper while the radiologist speaks and, on a GPU, transcribe as they go; once a
        pass names a tumor class, the detector starts searching the input volume for it."""
        try:
            from LoGSAMLib.asr import LiveTranscriber

            pipeline = self.logic.pipeline(self.logic.pipelineOptions(self._parameterNode))
            return LiveTranscriber(lambda: pipeline.transcriber, language=pipeline.options.language,
                                   passes_on_cpu=False, on_partial=self._earlyDetectionForLive(pipeline))
        except Exception:  # live transcription is a convenience: recording goes on without it
            logging.warning("LoGSAM: live transcription unavailable", exc_info=True)
            return None

    def _earlyDetectionForLive(self, pipeline):
        p = self._parameterNode
        if p is None or p.inputVolume is None:
            return None
        try:
            volume = self.logic.volumeFromNode(p.inputVolume)  # main thread: reads MRML
        except Exception:
            logging.warning("LoGSAM: no early detection during this dictation", exc_info=True)
            return None
        return self.logic.earlyDetectionFromTranscripts(pipeline, volume)

    def _feedLive(self, recorder) -> None:
        live = self._live
        if live is None or time.monotonic() - self._liveFedAt < LIVE_FEED_SECONDS:
            return
        self._liveFedAt = time.monotonic()
        live.update(recorder.snapshot())
        if live.partial is not None:
            heard = live.partial.english
            self.ui.dictationStatusLabel.text = _("Recording… heard so far: {text}").format(
                text=heard if len(heard) <= 120 else "…" + heard[-119:])

    def _closeLive(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.close(wait=False)  # never block the GUI on a Whisper load or pass

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
        with slicer.util.tryWithErrorDisplay(_("Recording failed."), waitCursor=True):
            audio = recorder.stop()
        self._updateButtons()
        if audio is not None:
            self.ui.dictationStatusLabel.text = _("Recorded {seconds:.1f} s; transcribing…").format(
                seconds=len(audio) / 16000.0)
            self._transcribe(audio, live)
        elif live is not None:
            live.close(wait=False)

    def onLoadAudio(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), _("Load dictation audio"), "",
            _("Audio files (*.wav *.flac *.mp3 *.ogg *.m4a *.webm);;All files (*)"))
        if not path or not self._ensureDependencies():
            return
        self.logic.cancelEarlyDetection()
        self.ui.dictationStatusLabel.text = _("Transcribing {name}…").format(name=os.path.basename(path))
        self._transcribe(path)

    def _transcribe(self, audio, live=None) -> None:
        if not self._ensureDependencies():
            if live is not None:
                live.close(wait=False)
            return
        pipeline = self.logic.pipeline(self.logic.pipelineOptions(self._parameterNode))

        def work(progress, cancel):
            if live is not None:  # the final pass, or none when the live one already heard everything
                transcript = live.finish(audio, progress=progress, cancel=cancel)
            else:
                transcript = pipeline.transcribe(audio, progress=progress, cancel=cancel)
            cancel.check()
            progress("nlp", 0.0, "")
            return transcript, pipeline.extract(transcript.english)

        self._startJob("transcription", work, self._onTranscribed)

    def _onTranscribed(self, result) -> None:
        transcript, findings = result
        p = self._parameterNode
        if p is None:  # the scene was closed meanwhile
            return
        with slicer.util.NodeModify(p.parameterNode):
            p.dictation = transcript.text
            p.translation = transcript.translation or ""
            p.spokenLanguage = transcript.language or ""
        self.ui.dictationStatusLabel.text = _("Transcribed ({language}).").format(language=transcript.language)
        self.ui.stageLabel.text = ""
        self._showFindings(findings, transcript.english)

    def onReview(self) -> None:
        text = self._englishText()
        if not text.strip():
            return
        if not self._ensureDependencies():
            return
        pipeline = self.logic.pipeline(self.logic.pipelineOptions(self._parameterNode))
        self._startJob("review", lambda progress, cancel: pipeline.extract(text),
                       lambda findings: self._showFindings(findings, text))

    def _showFindings(self, findings: "Findings | None", text: str | None) -> None:
        """Fill the Review section; affirmed classes become the checked ones."""
        self._findings, self._reviewedText = findings, text
        table = self.ui.findingsTable
        table.setRowCount(0)
        if findings is None:
            self.ui.reviewMessageLabel.text = ""
            self._updateButtons()
            return
        table.setRowCount(len(findings.findings))
        for row, finding in enumerate(findings.findings):
            values = [finding.label, _("yes") if finding.negated else "", _("yes") if finding.uncertain else "",
                      finding.side or "", finding.region or "", finding.text]
            for column, value in enumerate(values):
                item = qt.QTableWidgetItem(str(value))
                if finding.negated:
                    item.setForeground(qt.QBrush(qt.QColor("#b03030")))
                item.setToolTip(_("characters {start}-{end} of the analysed text").format(
                    start=finding.start, end=finding.end))
                table.setItem(row, column, item)
        p = self._parameterNode
        if p is not None:
            with slicer.util.NodeModify(p.parameterNode):
                p.segmentGlioma = "glioma" in findings.affirmed
                p.segmentMeningioma = "meningioma" in findings.affirmed
                p.segmentPituitary = "pituitary" in findings.affirmed
        notes = []
        if findings.affirmed:
            notes.append(_("Affirmed: {classes}.").format(classes=", ".join(findings.affirmed)))
        else:
            notes.append(_("No supported tumor class is affirmed. Correct the text, or tick a class yourself."))
        if findings.negated:
            notes.append(_("Negated (not segmented): {classes}.").format(classes=", ".join(findings.negated)))
        if findings.unsupported:
            notes.append(_("Mentioned but not supported by LoGSAM: {names}.").format(
                names=", ".join(findings.unsupported)))
        self._reviewNotes = " ".join(notes)
        self.ui.reviewMessageLabel.text = self._reviewNotes
        self.ui.reviewCollapsibleButton.collapsed = False
        self._updateButtons()
        self._startEarlyDetection()

    def _startEarlyDetection(self) -> None:
        """Search the volume for the checked classes while the findings are read. Segment uses
        the boxes only if text, classes, volume and settings are still the same; a convenience,
        so a failure here is logged, not shown (Segment reports it)."""
        p = self._parameterNode
        classes = self._checkedClasses()
        if p is None or p.inputVolume is None or not classes or self._job is not None:
            return
        try:
            early = self.logic.startEarlyDetection(p.inputVolume, classes, self._findings,
                                                   self.logic.pipelineOptions(p))
        except Exception:
            logging.warning("LoGSAM: early detection did not start", exc_info=True)
            return
        if early is not None:
            self.ui.stageLabel.text = _("The detector is searching while you review; press Segment when ready.")

    # ------------------------------------------------------------------ segmentation

    def onSegment(self) -> None:
        p = self._parameterNode
        if not self._reviewIsCurrent() or not self._ensureDependencies():
            return
        classes, findings, volumeNode = self._checkedClasses(), self._findings, p.inputVolume
        with slicer.util.tryWithErrorDisplay(_("Segmentation could not start."), waitCursor=True):
            volume = self.logic.volumeFromNode(volumeNode)  # main thread: reads MRML
            pipeline = self.logic.pipeline(self.logic.pipelineOptions(p))

            def work(progress, cancel):
                return pipeline.segment(volume, classes, findings, progress=progress, cancel=cancel)

            self._startJob("segment", work, lambda result: self._showResult(result, volumeNode))

    def onSegmentBox(self) -> None:
        p = self._parameterNode
        if not self._ensureDependencies():
            return
        volumeNode, label = p.inputVolume, p.boxClass
        with slicer.util.tryWithErrorDisplay(_("Box segmentation could not start."), waitCursor=True):
            box = self.logic.boxFromRoi(p.roiNode, volumeNode)
            volume = self.logic.volumeFromNode(volumeNode)
            pipeline = self.logic.pipeline(self.logic.pipelineOptions(p))

            def work(progress, cancel):
                return pipeline.segment_box(volume, box_lps=box, label=label, progress=progress, cancel=cancel)

            self._startJob("segmentBox", work, lambda result: self._showResult(result, volumeNode))

    def _showResult(self, result: "PipelineResult", volumeNode) -> None:
        if volumeNode.GetScene() is None:  # the scene was closed while the job ran
            self.ui.stageLabel.text = _("The input volume was removed; the result was discarded.")
            return
        p = self._parameterNode
        segmentationNode = self.logic.setSegmentationFromResult(result, volumeNode, p.outputSegmentation if p else None)
        if p is not None:
            p.outputSegmentation = segmentationNode
        summary = self.logic.resultSummary(result)
        self.ui.stageLabel.text = summary
        if not any(result.segmentation.mask(name).any() for name in result.segmentation.classes.values()):
            slicer.util.warningDisplay(
                _("Nothing was segmented. {summary}\nCheck the dictation and the slice plane, or place an ROI "
                  "around the tumor and use Segment in box.").format(summary=summary), windowTitle=_("LoGSAM"))

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
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            written = self.logic.export(p.outputSegmentation, p.inputVolume, path)
            self.ui.stageLabel.text = _("Saved {path}").format(path=written)

    # ------------------------------------------------------------------ models

    def _selectedModelId(self) -> str | None:
        if not hasattr(self, "ui"):
            return None
        items = self.ui.modelsTable.selectedItems()
        if not items:
            return None
        first = self.ui.modelsTable.item(items[0].row(), 0)
        return first.data(qt.Qt.UserRole) if first is not None else None

    def refreshModels(self) -> None:
        table = self.ui.modelsTable
        selected = self._selectedModelId()
        table.setRowCount(0)
        try:
            from LoGSAMLib import models

            specs = list(models.registry().values())
            cacheFolder = str(models.cache_dir())
        except Exception as error:
            self.ui.modelsStatusLabel.text = _("Model registry unavailable: {error}").format(error=error)
            return
        table.setRowCount(len(specs))
        for row, spec in enumerate(specs):
            try:
                status = _("downloaded") if models.is_cached(spec.id) else _("not downloaded")
            except Exception as error:
                status = str(error)
            values = [spec.title or spec.id, spec.stage, _formatSize(spec.size), status]
            for column, value in enumerate(values):
                item = qt.QTableWidgetItem(value)
                item.setToolTip(f"{spec.id}\n{spec.license}\n{spec.notes}".strip())
                if column == 0:
                    item.setData(qt.Qt.UserRole, spec.id)
                table.setItem(row, column, item)
            if spec.id == selected:
                table.selectRow(row)
        self.ui.modelsStatusLabel.text = _("Cache folder: {folder}").format(folder=cacheFolder)
        self._updateButtons()

    def onDownloadModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        spec = models.get_spec(modelId)
        hosts = sorted({f.url.split("/")[2] for f in spec.files if f.url and "://" in f.url})
        question = _("Download {title} ({size}) from {hosts}?\nThe file is checked against its checksum "
                     "before it is used.").format(title=spec.title, size=_formatSize(spec.size),
                                                  hosts=", ".join(hosts) or _("its package"))
        if not slicer.util.confirmOkCancelDisplay(question, windowTitle=_("LoGSAM: download model")):
            return

        def work(progress, cancel):
            def progressOrCancel(stage, fraction, message=""):
                cancel.check()  # downloads have no cancel argument: stop from the progress callback
                progress("download", fraction, message)

            return models.download(modelId, progress=progressOrCancel)

        self._startJob("download", work, lambda path: self._onModelJobDone(_("Downloaded {path}").format(path=path)),
                       progressBar=self.ui.modelsProgressBar)

    def onVerifyModels(self) -> None:
        from LoGSAMLib import models

        def work(progress, cancel):
            progress("verify", 0.0, _("hashing the cached files"))
            return models.verify()

        def done(results):
            usable = ("ok", "recorded", "missing")
            bad = [f"{mid}/{name}: {status}" for mid, name, status in results if status not in usable]
            present = sum(1 for _mid, _name, status in results if status in ("ok", "recorded"))
            text = _("{count} files verified.").format(count=present)
            if bad:
                text += " " + _("Problems: {problems}").format(problems="; ".join(bad))
                slicer.util.warningDisplay("\n".join(bad), windowTitle=_("LoGSAM: model check"))
            self._onModelJobDone(text)

        self._startJob("verify", work, done, progressBar=self.ui.modelsProgressBar)

    def onImportModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(),
                                              _("Import a file for {model}").format(model=modelId), "")
        if not path:
            return

        def work(progress, cancel):
            progress("import", 0.0, _("checking {name}").format(name=os.path.basename(path)))
            return models.import_file(modelId, path)

        self._startJob("import", work, lambda target: self._onModelJobDone(_("Imported to {path}").format(path=target)),
                       progressBar=self.ui.modelsProgressBar)

    def onRemoveModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        if not slicer.util.confirmYesNoDisplay(_("Delete the cached files of {model}?").format(model=modelId),
                                               windowTitle=_("LoGSAM: remove model")):
            return
        with slicer.util.tryWithErrorDisplay(_("Removing the model failed."), waitCursor=True):
            models.clear(modelId)
            self.logic.releaseModels()  # a loaded copy must not outlive its file
        self.refreshModels()

    def onOpenCacheFolder(self) -> None:
        from LoGSAMLib import models

        folder = models.cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))

    def _onModelJobDone(self, message: str) -> None:
        self.refreshModels()
        self.ui.modelsStatusLabel.text = message


def _segmentTag(segment, name: str) -> str | None:
    """A segment tag's value, or None (vtkSegment.GetTag fills an output string argument)."""
    value = vtk.reference("") if hasattr(vtk, "reference") else vtk.mutable("")
    if not segment.GetTag(name, value):
        return None
    return str(value.get()) if hasattr(value, "get") else str(value)


def _formatSize(size: int | None) -> str:
    if not size:
        return _("unknown")
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024.0
    return ""


#
# LoGSAMLogic
#


# Option fields a loaded pipeline can change without reloading any model.
_LIGHT_OPTIONS = {"plane", "box_threshold", "text_threshold", "language", "search", "coarse_step_mm",
                  "batch_size", "location_prior", "min_track_slices", "detector_size", "detect_every"}


class LoGSAMLogic(ScriptedLoadableModuleLogic):
    """MRML glue around LoGSAMLib, usable without the panel, e.g. from the Python console::

        logic = slicer.modules.logsam.widgetRepresentation().self().logic  # or LoGSAM.LoGSAMLogic()
        findings = logic.extract("Enhancing mass in the right frontal lobe, consistent with glioma.")
        segmentation = logic.segment(getNode("MRBrainTumor1"), findings.affirmed, findings)
        logic.export(segmentation, getNode("MRBrainTumor1"), "/tmp/tumor.nii.gz")

    The engine works on numpy arrays plus geometry; the methods here only convert between
    those and MRML nodes. The engine's models stay loaded between runs (``pipeline()``).
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._pipeline: Pipeline | None = None
        self._terminologyLoaded = False

    def getParameterNode(self) -> LoGSAMParameterNode:
        return LoGSAMParameterNode(super().getParameterNode())

    # ------------------------------------------------------------------ engine

    @staticmethod
    def pipelineOptions(parameterNode: LoGSAMParameterNode | None = None) -> "PipelineOptions":
        """Engine options from the panel's settings ("auto" and 0 thresholds mean: engine default)."""
        from LoGSAMLib.pipeline import PipelineOptions

        if parameterNode is None:
            return PipelineOptions()

        def auto(value: str) -> str | None:
            return None if value in ("", "auto") else value

        p = parameterNode
        return PipelineOptions(whisper_model=auto(p.whisperModel), language=auto(p.language),
                               segmenter=auto(p.segmenter), plane=p.plane, device=auto(p.device),
                               box_threshold=p.boxThreshold or None, text_threshold=p.textThreshold or None)

    def pipeline(self, options: "PipelineOptions | None" = None) -> "Pipeline":
        """The engine pipeline; models it has loaded are kept while heavy options stay the same.

        ``options=None`` keeps the current pipeline (or makes one with the engine's defaults).
        """
        from LoGSAMLib.pipeline import Pipeline, PipelineOptions

        if options is None and self._pipeline is not None:
            return self._pipeline
        options = options or PipelineOptions()
        fresh = Pipeline(options)  # cheap: validates the options, loads nothing
        if self._pipeline is not None:
            old, new = vars(self._pipeline.options), vars(options)
            if all(old.get(key) == value for key, value in new.items() if key not in _LIGHT_OPTIONS):
                self._pipeline.options = options
                return self._pipeline
            self._pipeline.cancel_detection()  # the old models' search would only compete for the CPU
        self._pipeline = fresh
        return fresh

    def releaseModels(self) -> None:
        """Drop the loaded models (they load again on next use)."""
        self.cancelEarlyDetection()
        self._pipeline = None

    def startEarlyDetection(self, volumeNode, classes, findings=None, options=None):
        """Start the detector's slice search for ``classes`` in the background and return at once
        (``Pipeline.start_detection``); a later ``segment`` of the same volume and prompt uses it."""
        if volumeNode is None or not classes:
            return None
        volume = self.volumeFromNode(volumeNode)
        return self.pipeline(options).start_detection(volume, list(classes), findings)

    def cancelEarlyDetection(self) -> None:
        if self._pipeline is not None:
            self._pipeline.cancel_detection()

    @staticmethod
    def earlyDetectionFromTranscripts(pipeline, volume):
        """A live transcriber's ``on_partial``: each pass's affirmed classes start (or keep) the
        background search. Runs in the transcriber's thread; a failure only loses the head start."""

        def onPartial(transcript) -> None:
            try:
                findings = pipeline.extract(transcript.english)
                if findings.affirmed:
                    pipeline.start_detection(volume, findings.affirmed, findings)
            except Exception:
                logging.warning("LoGSAM: early detection from the live transcript failed", exc_info=True)

        return onPartial

    def extract(self, text: str) -> "Findings":
        """The findings of an English dictation (spaCy + negspaCy; fast after the first call)."""
        return self.pipeline().extract(text)

    # ------------------------------------------------------------------ MRML <-> engine values

    @staticmethod
    def volumeFromNode(volumeNode) -> "Volume":
        """A scalar volume node -> engine Volume (pixels copied, geometry in LPS).

        The geometry is the node's own IJK-to-RAS; a parent transform is not applied (the
        output segmentation is placed under the same transform, so they stay aligned).
        """
        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.errors import InputError

        if volumeNode is None:
            raise InputError(_("Choose an input volume first."))
        imageData = volumeNode.GetImageData()
        if imageData is None or imageData.GetNumberOfPoints() == 0:
            raise InputError(_("The volume '{name}' has no image data.").format(name=volumeNode.GetName()))
        if imageData.GetNumberOfScalarComponents() != 1:
            raise InputError(_("The volume '{name}' is a color or vector image; LoGSAM needs a scalar MRI.")
                             .format(name=volumeNode.GetName()))
        matrix = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(matrix)
        return slicer_bridge.volume_from_ijk_to_ras(slicer.util.arrayFromVolume(volumeNode),
                                                    slicer_bridge.matrix_from_vtk(matrix))

    @staticmethod
    def volumeNodeFromVolume(volume: "Volume", name: str = "LoGSAM volume",
                             nodeClassName: str = "vtkMRMLScalarVolumeNode"):
        """An engine Volume -> a new volume node with the same pixels and geometry."""
        from LoGSAMLib import slicer_bridge

        ijkToRAS = slicer_bridge.matrix_to_vtk(slicer_bridge.ijk_to_ras_from_volume(volume), vtk.vtkMatrix4x4())
        return slicer.util.addVolumeFromArray(volume.array, ijkToRAS=ijkToRAS, name=name,
                                              nodeClassName=nodeClassName)

    @staticmethod
    def boxFromRoi(roiNode, volumeNode) -> tuple:
        """An ROI node -> the two LPS corners (in the volume's own frame) ``segment_box`` takes.

        A rotated ROI gives its axis-aligned enclosing box; a transformed volume gets the box
        mapped into its untransformed frame, where the engine works.
        """
        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.errors import InputError

        if roiNode is None:
            raise InputError(_("Place an ROI around the tumor first (Markups > ROI)."))
        bounds = [0.0] * 6
        roiNode.GetRASBounds(bounds)  # world coordinates
        corners = slicer_bridge.bounds_corners(bounds)
        if volumeNode is not None and volumeNode.GetParentTransformNode() is not None:
            worldToVolume = vtk.vtkGeneralTransform()
            volumeNode.GetParentTransformNode().GetTransformFromWorld(worldToVolume)
            corners = [worldToVolume.TransformPoint(list(corner)) for corner in corners]
        return slicer_bridge.ras_bounds_to_lps_box(slicer_bridge.bounds_of_points(corners))

    @staticmethod
    def classDisplay(className: str) -> tuple:
        """(segment name, RGB color 0..1, terminology entry string or None) for an engine class."""
        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.outputs import CLASS_INFO

        info = CLASS_INFO.get(className)
        if info is None:
            return className, (0.55, 0.80, 0.35), None
        term = info.terminology()
        entry = slicer_bridge.terminology_entry_string(
            category=term["category"], type_=term["type"], type_modifier=term.get("typeModifier"),
            context=term["contextName"], region=term.get("anatomicRegion"),
            region_modifier=term.get("anatomicRegionModifier"),
            region_context=term.get("anatomicContextName", slicer_bridge.ANATOMIC_CONTEXT))
        return info.name, tuple(float(c) for c in info.color), entry

    def _loadTerminology(self) -> None:
        """Declare LoGSAM's tumor types to Slicer so the terminology selector shows them."""
        if self._terminologyLoaded:
            return
        self._terminologyLoaded = True
        try:
            import json
            import tempfile

            from LoGSAMLib.outputs import terminology_context

            terminologies = slicer.modules.terminologies.logic()
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
                json.dump(terminology_context(), file)
            terminologies.LoadTerminologyFromFile(file.name)
            os.remove(file.name)
        except Exception:  # only the selector's display depends on it
            logging.warning("LoGSAM: could not register its terminology context", exc_info=True)

    @staticmethod
    def _setTerminology(segment, entry: str) -> None:
        if hasattr(segment, "SetTerminology"):
            segment.SetTerminology(entry)
        else:  # Slicer before 5.7
            segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), entry)

    def setSegmentationFromResult(self, result, volumeNode, segmentationNode=None):
        """Put an engine result (PipelineResult, or a types.Segmentation) into a segmentation node.

        One segment per class, with its id the class name (so a new run replaces the segments of
        the classes it produced and keeps any other segment), the class's name, color and
        terminology, reference geometry from ``volumeNode``, the same parent transform, and a
        place next to the input volume (its study) in the subject hierarchy.
        """
        import numpy as np

        from LoGSAMLib import slicer_bridge

        segmentation = getattr(result, "segmentation", result)
        labelmap = segmentation.labelmap
        self._loadTerminology()
        if segmentationNode is None:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName(f"{volumeNode.GetName()} LoGSAM"))
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        segmentationNode.SetAndObserveTransformNodeID(volumeNode.GetTransformNodeID())

        # The engine returns masks in the input's exact geometry; if not, a temporary node carries theirs.
        nodeMatrix = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(nodeMatrix)
        sameGeometry = (tuple(slicer.util.arrayFromVolume(volumeNode).shape[:3]) == labelmap.array.shape
                        and np.allclose(slicer_bridge.matrix_from_vtk(nodeMatrix),
                                        slicer_bridge.ijk_to_ras_from_volume(labelmap), atol=1e-4))
        referenceNode = volumeNode if sameGeometry else self.volumeNodeFromVolume(
            labelmap, name="LoGSAM geometry", nodeClassName="vtkMRMLLabelMapVolumeNode")
        try:
            vtkSegmentation = segmentationNode.GetSegmentation()
            for value, className in sorted(segmentation.classes.items()):
                mask = labelmap.array == value
                if vtkSegmentation.GetSegment(className):
                    vtkSegmentation.RemoveSegment(className)
                if not mask.any():
                    continue
                name, color, entry = self.classDisplay(className)
                vtkSegmentation.AddEmptySegment(className, name, list(color))
                segment = vtkSegmentation.GetSegment(className)
                segment.SetNameAutoGenerated(False)
                segment.SetColorAutoGenerated(False)
                if entry:
                    self._setTerminology(segment, entry)
                segment.SetTag(CLASS_TAG, className)
                slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), segmentationNode,
                                                                 className, referenceNode)
        finally:
            if referenceNode is not volumeNode:
                slicer.mrmlScene.RemoveNode(referenceNode)

        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        volumeItem = shNode.GetItemByDataNode(volumeNode)
        segmentationItem = shNode.GetItemByDataNode(segmentationNode)
        if volumeItem and segmentationItem:
            shNode.SetItemParent(segmentationItem, shNode.GetItemParent(volumeItem))
        return segmentationNode

    @staticmethod
    def resultSummary(result) -> str:
        """One line per class: lesion volume in mL, then the engine's warnings."""
        import numpy as np

        segmentation = getattr(result, "segmentation", result)
        voxelMl = float(np.prod(segmentation.labelmap.spacing)) / 1000.0
        parts = []
        for value, className in sorted(segmentation.classes.items()):
            count = int(np.count_nonzero(segmentation.labelmap.array == value))
            parts.append(_("{name}: {volume:.1f} mL").format(name=className, volume=count * voxelMl)
                         if count else _("{name}: not found").format(name=className))
        warnings = (getattr(result, "report", None) or {}).get("warnings") or []
        return "; ".join(parts) + ("" if not warnings else "\n" + "\n".join(str(w) for w in warnings))

    # ------------------------------------------------------------------ whole runs (scripts)

    def segment(self, volumeNode, classes, findings=None, segmentationNode=None, options=None,
                progress=None, cancel=None):
        """Detect and segment ``classes`` in ``volumeNode``; blocks until done (for scripts).

        Returns the segmentation node (``segmentationNode`` or a new one). The panel runs the same
        steps with the engine call in a worker thread.
        """
        from LoGSAMLib.progress import no_progress

        volume = self.volumeFromNode(volumeNode)
        result = self.pipeline(options).segment(volume, list(classes), findings,
                                                progress=progress or no_progress, cancel=cancel)
        return self.setSegmentationFromResult(result, volumeNode, segmentationNode)

    def segmentBox(self, volumeNode, roiNode, label="glioma", segmentationNode=None, options=None,
                   progress=None, cancel=None):
        """Segment every slice an ROI covers as ``label`` (no detector); blocks until done."""
        from LoGSAMLib.progress import no_progress

        box = self.boxFromRoi(roiNode, volumeNode)
        volume = self.volumeFromNode(volumeNode)
        result = self.pipeline(options).segment_box(volume, box_lps=box, label=label,
                                                    progress=progress or no_progress, cancel=cancel)
        return self.setSegmentationFromResult(result, volumeNode, segmentationNode)

    # ------------------------------------------------------------------ export

    def segmentationFromNode(self, segmentationNode, volumeNode):
        """A segmentation node -> engine Segmentation on the input volume's grid.

        Each segment becomes one label value: the class's documented value for LoGSAM segments
        (outputs.CLASS_LABELS), the next free value for segments added by hand. Where segments
        overlap, the later one wins.
        """
        import numpy as np

        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.errors import InputError
        from LoGSAMLib.outputs import CLASS_LABELS
        from LoGSAMLib.types import Segmentation

        if segmentationNode is None or volumeNode is None:
            raise InputError(_("Choose the input volume and the segmentation to export."))
        matrix = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(matrix)
        shape = slicer.util.arrayFromVolume(volumeNode).shape
        labels = np.zeros(shape, dtype=np.uint8)
        classes = {}
        vtkSegmentation = segmentationNode.GetSegmentation()
        segmentIds = [vtkSegmentation.GetNthSegmentID(n) for n in range(vtkSegmentation.GetNumberOfSegments())]
        if not segmentIds:
            raise InputError(_("The segmentation '{name}' has no segments.").format(name=segmentationNode.GetName()))
        nextValue = max(CLASS_LABELS.values()) + 1
        for segmentId in segmentIds:
            segment = vtkSegmentation.GetSegment(segmentId)
            className = _segmentTag(segment, CLASS_TAG)
            if className in CLASS_LABELS:
                value = CLASS_LABELS[className]
            else:
                className, value, nextValue = segment.GetName(), nextValue, nextValue + 1
                if value > 255:
                    raise InputError(_("Too many segments for an 8-bit label map."))
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, volumeNode)
            labels[mask > 0] = value
            classes[value] = className
        volume = slicer_bridge.volume_from_ijk_to_ras(labels, slicer_bridge.matrix_from_vtk(matrix), copy=False)
        return Segmentation(volume, classes)

    def export(self, segmentationNode, volumeNode, path: str) -> str:
        """Write the segmentation by file extension, in the input volume's geometry:
        ``.nii.gz`` / ``.nii`` / ``.nrrd`` label map or ``.seg.nrrd`` Slicer segmentation.

        The engine's writer is used (the same files as the ``logsam`` command, written atomically).
        """
        segmentation = self.segmentationFromNode(segmentationNode, volumeNode)
        try:
            from LoGSAMLib.outputs import write_segmentation

            return str(write_segmentation(segmentation, path))
        except ImportError:
            if not path.lower().endswith(".seg.nrrd"):
                raise
            # slicerio not installed yet: Slicer's own writer produces the same kind of file.
            if not slicer.util.saveNode(segmentationNode, path):
                raise
            return path

    # ------------------------------------------------------------------ dependencies

    @staticmethod
    def requirementsPath() -> str:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", "requirements.txt")

    def requirements(self) -> list:
        with open(self.requirementsPath(), encoding="utf-8") as file:
            lines = [line.split("#", 1)[0].strip() for line in file]
        return [line for line in lines if line and not line.startswith("-")]

    def missingDependencies(self) -> list:
        """Names of the packages that are missing or too old (torch first)."""
        import importlib.metadata
        import re

        try:
            from packaging.requirements import Requirement
        except ImportError:  # Slicer always ships packaging; be safe anyway
            Requirement = None

        missing = []
        for text in [f"torch{TORCH_REQUIREMENT}", "torchvision", *self.requirements()]:
            if Requirement is not None:
                requirement = Requirement(text)
                name, specifier = requirement.name, requirement.specifier
            else:
                name, specifier = re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0], None
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(name)
                continue
            if specifier is not None and not specifier.contains(installed, prereleases=True):
                missing.append(f"{name} ({installed}, needs {specifier})")
        return missing

    def installDependencies(self, askConfirmation: bool = True) -> bool:
        """Install what is missing, after one confirmation: torch and torchvision through the
        PyTorch extension (the build that matches this computer's GPU), then requirements.txt
        from PyPI. Returns True when everything is installed."""
        missing = self.missingDependencies()
        if not missing:
            return True
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                _("LoGSAM needs these Python packages: {names}.\n\nPyTorch is installed by the PyTorch extension "
                  "(a GPU build when a GPU is present, about 2-3 GB), the others from PyPI (about 1 GB). "
                  "This takes several minutes. Continue?").format(names=", ".join(missing)),
                windowTitle=_("LoGSAM: install dependencies")):
            return False

        if any(name.split(" ")[0] in ("torch", "torchvision") for name in missing):
            try:
                import PyTorchUtils
            except ImportError:
                slicer.util.errorDisplay(
                    _("LoGSAM gets PyTorch from the PyTorch extension, which is not installed. "
                      "Install 'PyTorch' in the Extensions Manager, restart Slicer, then try again."),
                    windowTitle=_("LoGSAM"))
                return False
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if not torchLogic.torchInstalled():
                torch = torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
                if torch is None:
                    return False
            stillMissing = [n for n in self.missingDependencies() if n.split(" ")[0] in ("torch", "torchvision")]
            if stillMissing:
                slicer.util.errorDisplay(
                    _("PyTorch does not meet LoGSAM's needs ({problems}). Update it in the PyTorch Utils module "
                      "(torch {requirement}), restart Slicer, then try again.").format(
                        problems=", ".join(stillMissing), requirement=TORCH_REQUIREMENT), windowTitle=_("LoGSAM"))
                return False

        try:
            import slicer.packaging as packaging

            pipEnsure = packaging.pip_ensure
        except (ImportError, AttributeError):  # Slicer before slicer.packaging
            pipEnsure = None
        if pipEnsure is not None:
            requirements = packaging.load_requirements(self.requirementsPath())
            try:  # skip_packages keeps pip from pulling a second torch in through a dependency
                pipEnsure(requirements, skip_packages=["torch", "torchvision"], prompt_install=False,
                          requester="LoGSAM")
            except TypeError:  # an early pip_ensure without skip_packages
                pipEnsure(requirements, prompt_install=False, requester="LoGSAM")
        else:
            with slicer.util.WaitCursor():
                slicer.util.showStatusMessage(_("Installing LoGSAM's Python packages…"), 2000)
                try:
                    slicer.util.pip_install(["-r", self.requirementsPath()])
                except TypeError:  # older pip_install takes one string
                    slicer.util.pip_install(f'-r "{self.requirementsPath()}"')
            if slicer.util.confirmYesNoDisplay(
                    _("The packages are installed. Restart Slicer now? (Recommended: packages that were "
                      "already loaded are only updated after a restart.)"), windowTitle=_("LoGSAM")):
                slicer.util.restart()
        return not self.missingDependencies()

    def missingModels(self, segmenter: str = "litemedsam") -> list:
        """Ids of the models the typed-dictation path needs that are not in the cache."""
        from LoGSAMLib import models

        needed = [*DETECTION_MODELS, SEGMENTER_MODELS.get(segmenter, segmenter)]
        missing = []
        for modelId in needed:
            try:
                if not models.is_cached(modelId):
                    missing.append(modelId)
            except Exception:
                missing.append(modelId)
        return missing


#
# LoGSAMTest
#


class LoGSAMTest(ScriptedLoadableModuleTest):
    """In-Slicer self-test: the MRML <-> array <-> geometry glue, segment naming and export
    always; the whole method on MRBrainTumor1 when the dependencies and models are present."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        for test in (self.test_SampleVolumeGeometry, self.test_ObliqueVolumeGeometry, self.test_SegmentsFromResult,
                     self.test_ExportRoundTrip, self.test_BoxFromRoi, self.test_Inference):
            self.setUp()
            test()

    # helpers -----------------------------------------------------------------
    @staticmethod
    def _matrix(node):
        from LoGSAMLib import slicer_bridge

        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        return slicer_bridge.matrix_from_vtk(matrix)

    def _checkNodeMatchesVolume(self, node, volume):
        import numpy as np

        ijkToRAS = self._matrix(node)
        np.testing.assert_allclose(volume.ijk_to_ras_matrix(), ijkToRAS, atol=1e-6)
        shape = volume.array.shape
        imageData = node.GetImageData()
        corners = [(0, 0, 0), (shape[2] - 1, shape[1] - 1, shape[0] - 1), (shape[2] // 2, shape[1] // 3, shape[0] // 4)]
        for ijk in corners:
            i, j, k = ijk
            self.assertEqual(imageData.GetScalarComponentAsDouble(i, j, k, 0), float(volume.array[k, j, i]))
            lps = (volume.ijk_to_lps_matrix() @ np.array([i, j, k, 1.0]))[:3]
            ras = (ijkToRAS @ np.array([i, j, k, 1.0]))[:3]
            np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-6)

    def _obliqueNode(self):
        """A small oblique, anisotropic, flipped-axis volume with a bright sphere."""
        import numpy as np

        from LoGSAMLib import slicer_bridge

        angle = np.radians(25.0)
        cos, sin = np.cos(angle), np.sin(angle)
        rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        directions = rotation @ np.diag([1.0, -1.0, 1.0])
        ijkToRAS = slicer_bridge.ijk_to_ras_from_geometry((0.9, 1.1, 2.5), (-30.0, 40.0, -12.0), directions)
        k, j, i = np.mgrid[0:20, 0:40, 0:36]
        array = (100 * (((i - 20) ** 2 + (j - 15) ** 2 + 4 * (k - 10) ** 2) < 60)).astype(np.int16)
        node = slicer.util.addVolumeFromArray(array, ijkToRAS=slicer_bridge.matrix_to_vtk(ijkToRAS, vtk.vtkMatrix4x4()),
                                              name="LoGSAMTestOblique")
        return node, array

    # tests -------------------------------------------------------------------
    def test_SampleVolumeGeometry(self):
        self.delayDisplay("MRML <-> engine geometry on MRBrainTumor1")
        import SampleData

        registerSampleData()
        node = SampleData.downloadSample("MRBrainTumor1")
        volume = LoGSAMLogic.volumeFromNode(node)
        self.assertEqual(volume.array.shape, slicer.util.arrayFromVolume(node).shape)
        self._checkNodeMatchesVolume(node, volume)
        back = LoGSAMLogic.volumeNodeFromVolume(volume, name="roundTrip")
        self._checkNodeMatchesVolume(back, volume)
        self.delayDisplay("Sample volume geometry passed")

    def test_ObliqueVolumeGeometry(self):
        self.delayDisplay("MRML <-> engine geometry on an oblique volume")
        import numpy as np

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        np.testing.assert_array_equal(volume.array, array)
        np.testing.assert_allclose(volume.spacing, (0.9, 1.1, 2.5), atol=1e-6)
        # RAS->LPS keeps the handedness; the flipped j axis makes it left-handed.
        np.testing.assert_allclose(np.linalg.det(volume.direction), -1.0, atol=1e-6)
        self._checkNodeMatchesVolume(node, volume)
        self.delayDisplay("Oblique volume geometry passed")

    def test_SegmentsFromResult(self):
        self.delayDisplay("Segment names, colors, terminology, geometry and hierarchy")
        from types import SimpleNamespace

        import numpy as np

        from LoGSAMLib import slicer_bridge
        from LoGSAMLib.outputs import CLASS_INFO
        from LoGSAMLib.types import Segmentation

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[array > 0] = 1
        labels[2:4, 30:35, 2:6] = 2
        result = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels), {1: "glioma", 2: "meningioma"}),
                                 report={"warnings": []})
        logic = LoGSAMLogic()
        segmentationNode = logic.setSegmentationFromResult(result, node)
        vtkSegmentation = segmentationNode.GetSegmentation()
        self.assertEqual(vtkSegmentation.GetNumberOfSegments(), 2)
        for value, className in ((1, "glioma"), (2, "meningioma")):
            segment = vtkSegmentation.GetSegment(className)
            self.assertEqual(segment.GetName(), CLASS_INFO[className].name)
            np.testing.assert_allclose(segment.GetColor(), CLASS_INFO[className].color, atol=1e-6)
            entry = segment.GetTerminology() if hasattr(segment, "GetTerminology") else \
                _segmentTag(segment, slicer.vtkSegment.GetTerminologyEntryTagName())
            parsed = slicer_bridge.parse_terminology_entry(entry)
            self.assertEqual(_segmentTag(segment, CLASS_TAG), className)
            self.assertEqual(list(parsed["type"]), list(CLASS_INFO[className].type_code))
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, className, node)
            np.testing.assert_array_equal(mask > 0, labels == value)
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        self.assertEqual(shNode.GetItemParent(shNode.GetItemByDataNode(segmentationNode)),
                         shNode.GetItemParent(shNode.GetItemByDataNode(node)))
        # A second run for glioma only replaces glioma and keeps meningioma.
        labels2 = np.zeros_like(labels)
        labels2[5:8, 10:20, 10:20] = 1
        again = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels2), {1: "glioma"}), report={})
        logic.setSegmentationFromResult(again, node, segmentationNode)
        self.assertEqual(vtkSegmentation.GetNumberOfSegments(), 2)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "glioma", node)
        np.testing.assert_array_equal(mask > 0, labels2 == 1)
        self.assertIn("glioma", LoGSAMLogic.resultSummary(again))
        self.delayDisplay("Segments passed")

    def test_ExportRoundTrip(self):
        self.delayDisplay("Export as label map and segmentation, read back")
        import tempfile
        from types import SimpleNamespace

        import numpy as np

        from LoGSAMLib.outputs import CLASS_LABELS
        from LoGSAMLib.types import Segmentation

        node, array = self._obliqueNode()
        volume = LoGSAMLogic.volumeFromNode(node)
        labels = np.zeros(array.shape, dtype=np.uint8)
        labels[array > 0] = CLASS_LABELS["pituitary"]
        classes = {CLASS_LABELS["pituitary"]: "pituitary"}
        result = SimpleNamespace(segmentation=Segmentation(volume.with_array(labels), classes))
        logic = LoGSAMLogic()
        segmentationNode = logic.setSegmentationFromResult(result, node)
        folder = tempfile.mkdtemp(prefix="LoGSAMTest")
        for suffix in (".nii.gz", ".nrrd"):
            path = logic.export(segmentationNode, node, os.path.join(folder, "tumor" + suffix))
            loaded = slicer.util.loadLabelVolume(path)
            np.testing.assert_array_equal(slicer.util.arrayFromVolume(loaded), labels)
            np.testing.assert_allclose(self._matrix(loaded), self._matrix(node), atol=1e-4)
        path = logic.export(segmentationNode, node, os.path.join(folder, "tumor.seg.nrrd"))
        loadedSegmentation = slicer.util.loadSegmentation(path)
        names = [loadedSegmentation.GetSegmentation().GetNthSegment(n).GetName()
                 for n in range(loadedSegmentation.GetSegmentation().GetNumberOfSegments())]
        self.assertEqual(names, [LoGSAMLogic.classDisplay("pituitary")[0]])
        self.delayDisplay("Export passed")

    def test_BoxFromRoi(self):
        self.delayDisplay("ROI -> LPS box, with and without a volume transform")
        import numpy as np

        node, _array = self._obliqueNode()
        roi = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
        roi.SetCenter(10.0, -20.0, 5.0)
        roi.SetSize(20.0, 10.0, 6.0)
        box = LoGSAMLogic.boxFromRoi(roi, node)
        np.testing.assert_allclose(box, ((-20.0, 15.0, 2.0), (0.0, 25.0, 8.0)), atol=1e-6)
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        shift = vtk.vtkMatrix4x4()
        shift.SetElement(0, 3, 5.0)  # the volume moved 5 mm to the right
        transform.SetMatrixTransformToParent(shift)
        node.SetAndObserveTransformNodeID(transform.GetID())
        box = LoGSAMLogic.boxFromRoi(roi, node)
        np.testing.assert_allclose(box, ((-15.0, 15.0, 2.0), (5.0, 25.0, 8.0)), atol=1e-6)
        self.delayDisplay("ROI box passed")

    def test_Inference(self):
        """The whole method on MRBrainTumor1 with a typed dictation (needs dependencies + models)."""
        logic = LoGSAMLogic()
        missing = logic.missingDependencies()
        missingModels = [] if missing else logic.missingModels("litemedsam")
        if missing or missingModels:
            message = ("SKIPPED LoGSAM inference test: "
                       + (f"missing Python packages {', '.join(missing)}" if missing
                          else f"models not downloaded: {', '.join(missingModels)}")
                       + ". Install them in the LoGSAM module (Advanced) to run it.")
            logging.warning(message)
            self.delayDisplay(message)
            return
        self.delayDisplay("Running the whole method on MRBrainTumor1 (minutes on a CPU)")
        import numpy as np
        import SampleData

        from LoGSAMLib.pipeline import PipelineOptions

        node = SampleData.downloadSample("MRBrainTumor1")
        findings = logic.extract("Large extra-axial enhancing mass with dural tail, consistent with a meningioma. "
                                 "No evidence of glioma.")
        self.assertEqual(findings.affirmed, ["meningioma"])
        self.assertIn("glioma", findings.negated)
        started = time.time()
        segmentationNode = logic.segment(node, findings.affirmed, findings,
                                         options=PipelineOptions(segmenter="litemedsam"))
        logging.info(f"LoGSAM inference on MRBrainTumor1 took {time.time() - started:.0f} s")
        vtkSegmentation = segmentationNode.GetSegmentation()
        if vtkSegmentation.GetSegment("meningioma") is None:
            self.delayDisplay("The detector found no meningioma in MRBrainTumor1 (the run itself worked).")
            return
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, "meningioma", node)
        fraction = np.count_nonzero(mask) / mask.size
        self.assertTrue(0 < fraction < 0.2, f"implausible tumor fraction {fraction:.3f}")
        # Early detection in Slicer's Python: the search just made is found by its key, so a
        # background start ends at once and the next segmentation runs no detector.
        options = PipelineOptions(segmenter="litemedsam")
        early = logic.startEarlyDetection(node, findings.affirmed, findings, options)
        early.wait()
        self.assertFalse(early.errors)
        result = logic.pipeline(options).segment(logic.volumeFromNode(node), findings.affirmed, findings)
        self.assertTrue(result.report["search"]["meningioma"]["searched_earlier"])
        self.delayDisplay("Inference passed")
