"""The frozen starting point: the official Grounding DINO checkpoint as our transformers model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class BaseModel:
    model: Any  # transformers GroundingDinoForObjectDetection (official weights, no adapter), on the CPU
    tokenizer: Any
    model_id: str
    sha256: str  # of the official checkpoint file


def load_base(model_id: str = "groundingdino-swint-ogc") -> BaseModel:
    """The registry's base detector without any adapter, through the detector's own loader.

    The loader's converted-weights cache makes repeated runs start fast. Its per-caption BERT
    cache is removed: it serves inference only, and training changes BERT (LoRA on layers 8-11).
    """
    from ..detection import load_detector
    from ..detection.cache import file_digest
    from ..models import model_path

    detector = load_detector(model_id, adapter=None, device="cpu", precision="fp32")
    model = detector.model
    vars(model.model.text_backbone).pop("forward", None)  # the cache is an instance attribute
    return BaseModel(model=model, tokenizer=detector.tokenizer, model_id=model_id,
                     sha256=file_digest(model_path(model_id)))
