"""Box-prompted 2D segmenters: a slice and boxes in, one mask per box out.

``load_segmenter("medsam" | "litemedsam", device=None, precision=None)`` returns a
:class:`Segmenter`; torch and the model code are imported only when a model is built.
"""

from .base import SEGMENTER_MODELS, THRESHOLD, PromptSegmenter, Segmenter, load_segmenter
from .litemedsam import LiteMedSAM
from .medsam import MedSAM

__all__ = [
    "SEGMENTER_MODELS",
    "THRESHOLD",
    "LiteMedSAM",
    "MedSAM",
    "PromptSegmenter",
    "Segmenter",
    "load_segmenter",
]
