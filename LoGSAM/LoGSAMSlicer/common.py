"""Names and choices the module's parts share, and Slicer's translation helpers."""

import os
import sys

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without the i18n helpers

    def _(text: str) -> str:
        return text

    def translate(context: str, text: str) -> str:
        return text


__all__ = ["_", "translate"]

SUPPORTED_CLASSES = ("glioma", "meningioma", "pituitary")
WHISPER_MODELS = ("auto", "whisper-large-v3", "whisper-large-v3-turbo", "whisper-medium", "whisper-small",
                  "whisper-base", "whisper-tiny")
LANGUAGES = ("auto", "en", "de", "fr", "es", "it", "nl", "pt", "pl", "tr", "zh", "ja", "ar")
EXPORT_FORMATS = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".dcm")  # .dcm: DICOM SEG
MAX_RECORDING_SECONDS = 300.0
LIVE_FEED_SECONDS = 0.5  # how often the live transcriber gets the recording so far
CLASS_TAG = "LoGSAM.Class"  # segment tag holding the engine's class name (as outputs.py writes it)
# Models the typed-dictation path (detect + segment) needs; Whisper is only needed for audio.
DETECTION_MODELS = ("groundingdino-swint-ogc", "bert-base-uncased", "logsam-lora-dino")
SEGMENTER_MODELS = {"medsam": "medsam-vit-b", "litemedsam": "litemedsam"}
STAGE_NAMES = {"asr": "Transcribing", "nlp": "Reading the findings", "detect": "Detecting",
               "segment": "Segmenting", "download": "Downloading", "load": "Loading models",
               "verify": "Verifying", "import": "Importing", "upload": "Sending", "read": "Reading the volume",
               "fetch": "Receiving the result", "queued": "Waiting in the engine's queue",
               "engine": "Starting the engine"}

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def engineFolder() -> str:
    """The folder that holds the ``LoGSAMLib`` package (the engine the module talks to).

    In the installed extension the engine sits next to ``LoGSAM.py`` (see LoGSAM/CMakeLists.txt);
    when Slicer runs the module straight from a checkout (Additional module paths =
    <repo>/LoGSAM), it is one folder up.
    """
    for folder in (MODULE_DIR, os.path.dirname(MODULE_DIR)):
        if os.path.isfile(os.path.join(folder, "LoGSAMLib", "__init__.py")):
            return folder
    return MODULE_DIR


def ensureEngineImportable() -> None:
    """Make ``import LoGSAMLib`` work from a development checkout too (see ``engineFolder``)."""
    import importlib.util

    if importlib.util.find_spec("LoGSAMLib") is None:
        sys.path.insert(0, engineFolder())


def formatSize(size) -> str:
    if not size:
        return _("unknown")
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024.0
    return ""
