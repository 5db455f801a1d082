"""LoRA adaptation of Grounding DINO (``logsam train``): the published LoGSAM recipe, reproducibly.

Importing this package is light; torch, transformers and peft load inside the functions.

- :mod:`.config`: the recipe defaults and YAML/JSON config files;
- :mod:`.targets`: the published LoRA targets on the transformers model, the PEFT wrapper;
- :mod:`.data`: samples -> detector-sized images, normalised boxes, captions with negatives;
- :mod:`.matcher`, :mod:`.losses`: Hungarian matching, focal + L1 + GIoU on the last decoder layer;
- :mod:`.loop`: the training loop (validation, best adapter, resume);
- :mod:`.export`: the PEFT adapter folder and the published ``.pth`` layout.
"""

from __future__ import annotations

from .config import TrainConfig, load_config
from .export import export_pth, published_state_dict, read_training_info
from .loop import EpochResult, Trainer, TrainResult, train

__all__ = [
    "EpochResult",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "export_pth",
    "load_config",
    "published_state_dict",
    "read_training_info",
    "train",
]
