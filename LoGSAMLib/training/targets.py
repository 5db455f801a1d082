"""The published LoRA targets on our transformers Grounding DINO, and the PEFT model built on them.

The authors' ``add_lora_to_model`` lists PEFT suffixes of the original module names (``linear1``,
``cross_attn.value_proj``, ``bbox_embed.0.layers.0``, BERT ``layer.8-11`` dense layers, ...).
:func:`LoGSAMLib.detection.checkpoints.published_lora_targets` spells them out as full
official names; here they are renamed with the detector's name table and resolved against
the model, so that every target is one existing ``nn.Linear`` and PEFT gets exact names
(nothing else can match by suffix).

The decoder's box head is one module shared by all decoder layers, reachable under several
names; :func:`resolve` returns the name ``named_modules()`` reports for it (the one PEFT uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .config import TrainConfig


def published_targets(model_config: Any) -> list[str]:
    """The published targets (official names) for a transformers ``GroundingDinoConfig``."""
    from ..detection.checkpoints import published_lora_targets

    return published_lora_targets(model_config.encoder_layers, model_config.decoder_layers,
                                  model_config.text_config.num_hidden_layers)


def official_targets(config: TrainConfig, model_config: Any) -> list[str]:
    return published_targets(model_config) if config.targets == "published" else list(config.targets)


def _module_names(model: Any) -> dict[str, str]:
    """Canonical name (tied box-head aliases folded) -> the name ``named_modules()`` gives."""
    from ..detection.checkpoints import tie_canonical

    names: dict[str, str] = {}
    for name, _ in model.named_modules():  # duplicates (tied aliases) are listed once
        names.setdefault(tie_canonical(name), name)
    return names


def resolve(model: Any, official: Iterable[str], kind: str = "LoRA target") -> list[str]:
    """Official module names -> the model's module names (each must be an ``nn.Linear``)."""
    from torch import nn

    from ..detection.checkpoints import official_to_hf_names, tie_canonical

    available = _module_names(model)
    modules = dict(model.named_modules())
    out: list[str] = []
    for name in official:
        try:
            hf_names = official_to_hf_names(name)
        except KeyError as error:
            raise InputError(f"{kind} {name!r} is not a Grounding DINO module name (use the original "
                             "groundingdino names, e.g. transformer.decoder.layers.0.linear1).") from error
        for hf in hf_names:
            found = available.get(tie_canonical(hf))
            if found is None:
                raise InputError(f"{kind} {name!r} ({hf}) does not exist in this model; check the layer "
                                 "numbers against the architecture.")
            if not isinstance(modules[found], nn.Linear):
                raise InputError(f"{kind} {name!r} is a {type(modules[found]).__name__}, not a linear layer.")
            if found not in out:
                out.append(found)
    return out


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable parameters: {self.trainable:,} of {self.total:,} ({100 * self.fraction:.2f} %)"


def count_parameters(model: Any) -> ParameterCount:
    """Trainable and total parameters (each shared tensor once), as PEFT and the authors count them."""
    params = list(model.parameters())  # parameters() yields a shared tensor once
    return ParameterCount(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))


def lora_config(model: Any, config: TrainConfig) -> Any:
    """The ``peft.LoraConfig`` of ``config`` with targets resolved on ``model``."""
    from peft import LoraConfig

    targets = resolve(model, official_targets(config, model.config))
    full = resolve(model, config.full_layers, kind="fully trained layer")
    overlap = sorted(set(targets) & set(full))
    if overlap:
        raise InputError(f"{overlap[0]} is both a LoRA target and a fully trained layer; choose one.")
    return LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=config.dropout, bias="none",
                      target_modules=targets, modules_to_save=full or None)


def add_lora(model: Any, config: TrainConfig) -> Any:
    """``model`` wrapped by PEFT: base weights frozen, LoRA and the fully trained layers trainable."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, config))


def trainable_names(model: Any) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def check_trainable(model: Any) -> None:
    """Only LoRA matrices and PEFT's trained copies of the full layers may have ``requires_grad``."""
    wrong = [n for n in trainable_names(model) if ".lora_" not in n and ".modules_to_save." not in n]
    if wrong:
        raise RuntimeError(f"unexpected trainable parameters: {wrong[:5]}")

