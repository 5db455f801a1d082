"""Text-prompted 2D detection: Grounding DINO Swin-T with the LoGSAM LoRA adapter.

Importing this package is light (no torch); the heavy work happens inside the functions.
"""

from __future__ import annotations

from .architecture import DEFAULT_ARCHITECTURE, build_config, build_model
from .base import Detector
from .checkpoints import (
    Adapter,
    convert_hf_state_dict_to_official,
    convert_official_state_dict,
    hf_to_official_name,
    load_peft_folder,
    load_published_adapter,
    merge_lora,
    official_to_hf_name,
    official_to_hf_names,
    parse_adapter_state_dict,
    tie_canonical,
)
from .groundingdino import (
    DEFAULT_BOX_THRESHOLD,
    DEFAULT_TEXT_THRESHOLD,
    GroundingDinoDetector,
    load_detector,
    preprocess,
    resize_shape,
)

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_BOX_THRESHOLD",
    "DEFAULT_TEXT_THRESHOLD",
    "Adapter",
    "Detector",
    "GroundingDinoDetector",
    "build_config",
    "build_model",
    "convert_hf_state_dict_to_official",
    "convert_official_state_dict",
    "hf_to_official_name",
    "load_detector",
    "load_peft_folder",
    "load_published_adapter",
    "merge_lora",
    "official_to_hf_name",
    "official_to_hf_names",
    "parse_adapter_state_dict",
    "preprocess",
    "resize_shape",
    "tie_canonical",
]
