"""The training recipe: defaults that reproduce the published LoGSAM adapter, and config files.

Defaults come from the authors' code and logs (``Model/LoRA_DINO`` in github.com/robayet002/LoGSAM:
``util/lora.py``, ``configs/train_config.yaml``) and the paper: LoRA rank 64 = alpha, dropout 0, no
bias, on the published targets (see :mod:`.targets`), the last box-head layer trained fully;
AdamW lr 2e-4 without weight decay, one-cycle schedule (10 % warm-up, cosine), gradient
clipping 5, batch size 8, 130 epochs.

A config file (YAML or JSON) is a mapping of these field names; fields may be grouped in
sections (``lora: {rank: 64}``), which are flattened, and a few names of the authors'
``train_config.yaml`` are accepted as aliases (``learning_rate``, ``num_epochs``, ``max_grad_norm``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

# Names used by the authors' train_config.yaml -> ours.
ALIASES = {"learning_rate": "lr", "num_epochs": "epochs", "max_grad_norm": "grad_clip", "r": "rank",
           "lora_alpha": "alpha", "lora_dropout": "dropout"}
# Settings that may change when a run is resumed (they do not change the maths).
RUNTIME_FIELDS = ("device", "precision", "num_workers")


@dataclass
class TrainConfig:
    """Everything a run depends on (saved with the adapter as ``training.json``)."""

    # base model and LoRA
    base_model: str = "groundingdino-swint-ogc"
    rank: int = 64
    alpha: float | None = None  # None: alpha = rank (the published choice, LoRA scale 1)
    dropout: float = 0.0
    targets: str | list[str] = "published"  # or official module names (``transformer.decoder.layers.0.linear1``)
    full_layers: list[str] = field(default_factory=lambda: ["bbox_embed.0.layers.2"])
    # optimisation
    epochs: int = 130
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_fraction: float = 0.1
    grad_clip: float = 5.0
    # loss (last decoder layer) and Hungarian matching costs
    loss_class: float = 1.0
    loss_l1: float = 10.0
    loss_giou: float = 1.0
    cost_class: float = 1.0
    cost_l1: float = 10.0
    cost_giou: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # data
    classes: list[str] | None = None  # caption classes; None: every class with boxes in the data
    shuffle_captions: bool = True  # class order in each caption drawn per sample and epoch
    short_side: int = 800  # the detector's input size (shorter side), as at inference
    max_side: int = 1333
    hflip_prob: float = 0.0
    use_negatives: bool = True  # images without boxes (BRISC no-tumor) teach the detector to stay silent
    val_fraction: float = 0.2
    seed: int = 0
    # validation (the detector's defaults, as `logsam evaluate --detector-only` uses)
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    iou_threshold: float = 0.5
    best_metric: str = "map"  # "map" (validation mAP@0.5, ties by loss) or "loss"
    # runtime
    device: str | None = None
    precision: str | None = None  # None: fp16 autocast on CUDA, fp32 elsewhere; "fp32", "fp16", "bf16"
    num_workers: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(f"Invalid training config: {message}.")

        need(self.rank >= 1, f"rank must be >= 1, got {self.rank}")
        need(self.alpha is None or self.alpha > 0, f"alpha must be > 0, got {self.alpha}")
        need(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0.0 < self.warmup_fraction < 1.0, f"warmup_fraction must be in (0, 1), got {self.warmup_fraction}")
        need(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        need(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        need(0.0 <= self.hflip_prob <= 1.0, f"hflip_prob must be in [0, 1], got {self.hflip_prob}")
        need(32 <= self.short_side <= self.max_side, "need 32 <= short_side <= max_side")
        need(self.best_metric in ("map", "loss"), f"best_metric must be 'map' or 'loss', not {self.best_metric!r}")
        need(isinstance(self.targets, list) or self.targets == "published",
             "targets must be 'published' or a list of official module names")
        need(self.precision in (None, "fp32", "fp16", "bf16"), "precision must be fp32, fp16 or bf16")

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def scale(self) -> float:
        """The LoRA scale alpha / rank (1 in the published recipe)."""
        return self.lora_alpha / self.rank

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (None values are ignored, so CLI flags can be passed as they are)."""
        return from_dict({**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

    def differences(self, other: TrainConfig, ignore: tuple[str, ...] = RUNTIME_FIELDS) -> list[str]:
        """Fields (other than ``ignore``) whose values differ, as ``name: mine -> other``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine if k not in ignore and mine[k] != theirs[k]]


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def _flatten(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Sections (nested mappings whose name is not a field) are merged into one level."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key), str(key))
        if isinstance(value, Mapping) and name not in FIELDS:
            for inner, inner_value in _flatten(value, where).items():
                if inner in flat:
                    raise InputError(f"{where}: '{inner}' is set twice.")
                flat[inner] = inner_value
        else:
            if name in flat:
                raise InputError(f"{where}: '{name}' is set twice.")
            flat[name] = value
    return flat


def from_dict(raw: Mapping[str, Any], where: str = "training config") -> TrainConfig:
    """A :class:`TrainConfig` from a (possibly sectioned) mapping; unknown keys are an error."""
    flat = _flatten(raw, where)
    unknown = sorted(set(flat) - set(FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown settings {', '.join(unknown)}; known: {', '.join(FIELDS)}.")
    try:
        return TrainConfig(**flat)
    except TypeError as error:
        raise InputError(f"{where}: {error}") from error


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as error:
            raise InputError(f"{path} is not valid JSON: {error}") from error
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML: {error}") from error


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """The recipe defaults, updated by a YAML/JSON file and then by ``overrides`` (None = unset)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"Cannot read the training config {path}: {error.strerror or error}.") from error
        loaded = _parse(path, text)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise InputError(f"{path} must hold a mapping of settings (name: value).")
        raw = _flatten(loaded, str(path))
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(raw, str(path) if path is not None else "training config")
