"""LoGSAM engine: spoken radiology report -> brain-tumor segmentation.

Pure Python, no Slicer/Qt imports. Heavy dependencies (torch, transformers, whisper,
spaCy) are imported lazily inside the functions that need them.
"""

__version__ = "0.1.0"

SUPPORTED_CLASSES: tuple[str, ...] = ("glioma", "meningioma", "pituitary")
