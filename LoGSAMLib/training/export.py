"""Adapter files: the PEFT folder that training writes, and the published ``.pth`` layout.

PEFT folder (what ``logsam train --out DIR`` holds): ``adapter_config.json`` and
``adapter_model.safetensors`` written by PEFT's ``save_pretrained`` (module names of the
transformers model; the shared box head once), plus ``training.json`` (config, data hash,
history). ``logsam run --adapter DIR`` merges it; ``peft.PeftModel.from_pretrained`` loads it too.

Published layout (the LoGSAM release, ``logsam_lora_dino.pth``): ``{"model": state, "epoch": n}``
with PEFT keys of the *original* Grounding DINO module names,
``base_model.model.<module>.lora_A.weight`` / ``.lora_B.weight``, the rank only in the shapes
and alpha = rank (so the LoRA scale alpha / rank is folded into B here), and the fully
trained box-head layer as plain ``base_model.model.bbox_embed.0.layers.2.weight`` / ``.bias``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import InputError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TRAINING_INFO = "training.json"


def save_adapter(model: Any, folder: str | Path) -> Path:
    """Write a PEFT model's adapter into ``folder`` (files replaced one by one, never half-written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=folder))
    try:
        model.save_pretrained(str(staging))
        for path in staging.iterdir():
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def read_training_info(folder: str | Path) -> dict[str, Any]:
    """``training.json`` of an adapter folder ({} when absent)."""
    path = Path(folder) / TRAINING_INFO
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise InputError(f"Cannot read {path}: {error}") from error


def published_state_dict(folder: str | Path) -> dict[str, Any]:
    """The adapter of a PEFT folder as the published ``model`` state dict (original names, scale 1)."""
    from ..detection.checkpoints import hf_to_official_name, load_peft_folder, tie_canonical

    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise InputError(f"{folder} holds no adapter ({ADAPTER_CONFIG} is missing); train one with logsam train.")
    adapter = load_peft_folder(folder)
    state: dict[str, Any] = {}

    def official(name: str) -> str:
        # every alias of the shared box head becomes its published name bbox_embed.0.*
        return tie_canonical(hf_to_official_name(name))

    for module, (a, b) in adapter.lora.items():
        name = official(module)
        state[f"base_model.model.{name}.lora_A.weight"] = a.float().contiguous()
        state[f"base_model.model.{name}.lora_B.weight"] = (b.float() * adapter.scale).contiguous()
    for name, value in adapter.full.items():
        state[f"base_model.model.{official(name)}"] = value.float().contiguous()
    return state


def export_pth(folder: str | Path, path: str | Path) -> Path:
    """Write the adapter of ``folder`` as a published-layout ``.pth`` (see the module docstring)."""
    import torch

    path = Path(path)
    if path.is_dir():
        raise InputError(f"--export-pth needs a file name, and {path} is a folder.")
    state = published_state_dict(folder)
    epoch = int(read_training_info(folder).get("adapter_epoch", 0))
    with atomic_path(path) as tmp:
        torch.save({"model": state, "epoch": epoch}, tmp)
    return path
