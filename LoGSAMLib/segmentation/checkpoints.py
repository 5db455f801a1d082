"""Read segmenter checkpoints safely and say what a file is when it is the wrong one."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

# (image-encoder embed dim, depth) of the published SAM image encoders.
SAM_VARIANTS = {(768, 12): "SAM ViT-B", (1024, 24): "SAM ViT-L", (1280, 32): "SAM ViT-H"}


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` a checkpoint and unwrap ``{"model": ...}``-style files."""
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path.name} is not a readable PyTorch weights file ({reason}); "
            "download it again or import the right file."
        ) from error
    if isinstance(obj, dict):  # training checkpoints (and Grounding DINO's) wrap the weights
        for wrapper in ("model", "state_dict"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path.name} holds no state dict (found {type(obj).__name__}).")
    return obj


def sam_encoder_shape(state: dict[str, Any]) -> tuple[int, int] | None:
    """(embed dim, depth) of a SAM ViT image encoder in ``state``, or None if it has none."""
    weight = state.get("image_encoder.patch_embed.proj.weight")
    if weight is None or getattr(weight, "ndim", 0) != 4:
        return None
    blocks = {key.split(".")[2] for key in state if key.startswith("image_encoder.blocks.")}
    return int(weight.shape[0]), len(blocks)


def sam_variant_name(embed_dim: int, depth: int) -> str:
    return SAM_VARIANTS.get((embed_dim, depth), f"a SAM-architecture model (embed dim {embed_dim}, depth {depth})")


def describe(state: dict[str, Any]) -> str:
    """A short human name for what a checkpoint is ("SAM ViT-H", "a Grounding DINO checkpoint", ...)."""
    keys = list(state)
    if "dims" in state and "model_state_dict" in state:
        return "a Whisper checkpoint"
    shape = sam_encoder_shape(state)
    if shape is not None:
        return sam_variant_name(*shape)
    if any(k.startswith("image_encoder.patch_embed.seq.") or k.startswith("image_encoder.layers.") for k in keys):
        return "a LiteMedSAM (TinyViT) checkpoint"
    if any(k.startswith("image_encoder.trunk.") for k in keys):
        return "a SAM 2 checkpoint"
    if any("lora_A" in k or "lora_B" in k for k in keys):
        return "a LoRA adapter"
    if any(k.startswith(("backbone.0.", "transformer.", "bert.", "model.backbone.")) for k in keys):
        return "a Grounding DINO checkpoint"
    return f"an unknown checkpoint (first keys: {', '.join(keys[:3])})"


def load_strict(module: Any, state: dict[str, Any], file_name: str, expected: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line CheckpointError instead of torch's essay."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even with strict=False
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), "")
        raise CheckpointError(
            f"{file_name} does not fit {expected}: {detail[:200] or 'tensor shapes differ'}."
        ) from error
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[0]})")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[0]})")
    if problems:
        raise CheckpointError(
            f"{file_name} does not fit {expected}: {'; '.join(problems)}. Is it a complete {expected} file?"
        )
