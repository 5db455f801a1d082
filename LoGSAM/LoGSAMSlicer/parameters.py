"""The parameter node (what the panel shows that survives saving the scene) and the connector
that binds a QPlainTextEdit to a str parameter."""

from typing import Annotated, Any, get_args, get_origin

import qt
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import (
    Choice,
    GuiConnector,
    WithinRange,
    parameterNodeGuiConnector,
    parameterNodeWrapper,
)

from .common import EXPORT_FORMATS, LANGUAGES, SUPPORTED_CLASSES, WHISPER_MODELS


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
