"""The training loop: LoRA on the frozen detector, validation each epoch, best adapter kept, resumable.

One optimiser step per ``grad_accum`` batches: AdamW on the trainable parameters only,
gradient-norm clipping, then the one-cycle learning rate. On CUDA the forward pass runs under
fp16 autocast with a gradient scaler (bf16 without one); parameters and the loss stay fp32.

``--out`` ends up holding, after every epoch:

- the best adapter so far: ``adapter_config.json`` + ``adapter_model.safetensors`` (standard PEFT,
  loadable by ``logsam run --adapter DIR`` and by ``peft.PeftModel.from_pretrained``);
- ``training.json``: config, classes, data hash, base checkpoint hash, parameter counts, the
  per-epoch history and which epoch the adapter is from;
- ``checkpoints/last.pt``: trainable weights, optimiser, scheduler, scaler and RNG state, for
  ``--resume``. A resumed run continues exactly where the last finished epoch left off (data
  order, caption orders and flips depend only on seed and epoch).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..atomic import atomic_path, write_text_atomic
from ..datasets import DetectionSample, dataset_hash
from ..errors import CheckpointError, InputError, LoGSAMError
from ..progress import CancelToken, ProgressCallback, no_progress
from ..types import Box
from .base import BaseModel, load_base
from .config import TrainConfig, from_dict
from .data import Caption, Collator, DetectionDataset, model_inputs, targets_to
from .export import TRAINING_INFO, save_adapter
from .losses import set_loss
from .targets import ParameterCount, add_lora, check_trainable, count_parameters, trainable_names

log = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "last.pt"
CHECKPOINT_FORMAT = "logsam-lora-train-1"
LOSS_KEYS = ("loss", "loss_class", "loss_l1", "loss_giou")


@dataclass
class EpochResult:
    """What one epoch measured (validation fields are None without a validation set)."""

    epoch: int  # 1-based
    train: dict[str, float]
    val: dict[str, float] | None = None
    recall: dict[str, float] = field(default_factory=dict)  # per class, at the IoU threshold
    ap: dict[str, float] = field(default_factory=dict)
    mean_recall: float | None = None
    map: float | None = None
    lr: float = 0.0  # at the start of the epoch
    seconds: float = 0.0
    best: bool = False

    def summary(self, epochs: int) -> str:
        text = f"epoch {self.epoch}/{epochs}: train loss {self.train['loss']:.4f}"
        if self.val is not None:
            per_class = "; ".join(f"{c} R {_fmt(self.recall.get(c))} AP {_fmt(self.ap.get(c))}" for c in self.recall)
            text += (f", val loss {self.val['loss']:.4f}, recall@0.5 {_fmt(self.mean_recall)}, "
                     f"mAP@0.5 {_fmt(self.map)} ({per_class})")
        text += f", lr {self.lr:.2e}, {self.seconds:.0f} s"
        return text + (", best so far: adapter saved" if self.best else "")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass
class TrainResult:
    out_dir: Path
    history: list[EpochResult]
    best_epoch: int
    parameters: ParameterCount
    classes: list[str]


def output_boxes(probs: Any, boxes: Any, caption: Caption, size: tuple[int, int], box_threshold: float,
                 text_threshold: float) -> list[Box]:
    """Detections of one image as the detector reports them (``GroundingDinoDetector.detect``'s rule).

    ``probs``: ``(Q, L)`` token probabilities of the caption's tokens; a query is kept when its best
    token beats ``box_threshold`` and is labelled with the class whose tokens score highest, if that
    beats ``text_threshold``.
    """
    height, width = size
    scores = probs.max(dim=1).values
    spans = list(caption.spans.items())
    out: list[Box] = []
    for q in (scores > box_threshold).nonzero().flatten().tolist():
        label, best = max(((name, float(probs[q, s:e].max())) for name, (s, e) in spans), key=lambda x: x[1])
        if best <= text_threshold:
            continue
        cx, cy, w, h = boxes[q].tolist()
        x0, x1 = np.clip([(cx - w / 2) * width, (cx + w / 2) * width], 0, width)
        y0, y1 = np.clip([(cy - h / 2) * height, (cy + h / 2) * height], 0, height)
        out.append(Box(float(x0), float(y0), float(x1), float(y1), float(scores[q]), label))
    return sorted(out, key=lambda b: -b.score)


def one_cycle(optimizer: Any, config: TrainConfig, total_steps: int) -> Any:
    """OneCycleLR: ``warmup_fraction`` of the steps up to ``lr``, then cosine down.

    Adam's betas stay fixed (no momentum cycling). A run of very few steps gets at least one
    warm-up step (OneCycleLR needs one); a single step runs at ``lr``.
    """
    import torch

    if total_steps < 2:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    pct = max(config.warmup_fraction, 1.5 / total_steps)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=pct,
                                               anneal_strategy="cos", cycle_momentum=False)


def _check_image_size(short_side: int, model_config: Any) -> None:
    """The two-stage query selection needs at least as many image tokens as queries."""
    levels = model_config.num_feature_levels
    tokens = sum(math.ceil(short_side / (8 * 2**i)) ** 2 for i in range(levels))
    if tokens < model_config.num_queries:
        raise InputError(f"Images with a shorter side of {short_side} px give the detector {tokens} image tokens, "
                         f"fewer than its {model_config.num_queries} queries; use a larger --image-size.")


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """A new run must not overwrite an adapter; a resumed one needs its checkpoint."""
    if resume and not (out_dir / CHECKPOINT).is_file():
        raise InputError(f"Nothing to resume: {out_dir / CHECKPOINT} does not exist; start without --resume.")
    if not resume and ((out_dir / CHECKPOINT).exists() or (out_dir / "adapter_config.json").exists()):
        raise InputError(f"{out_dir} already holds a training run; continue it with --resume or choose "
                         "another --out folder.")


class Trainer:
    """One training run (see the module docstring). ``run()`` trains; ``evaluate()`` measures.

    ``resume``: continue the run in ``out_dir`` from its checkpoint (settings and data must match);
    without it, ``out_dir`` must not hold a run yet.
    """

    def __init__(self, config: TrainConfig, train_samples: Sequence[DetectionSample],
                 val_samples: Sequence[DetectionSample], out_dir: str | Path, *, base: BaseModel | None = None,
                 data_info: dict[str, Any] | None = None, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, echo: Callable[[str], None] | None = None,
                 resume: bool = False) -> None:
        import torch

        from ..device import autocast_dtype, choose_device
        from ..evaluation import dataset_classes

        if not config.use_negatives:
            train_samples = [s for s in train_samples if len(s.boxes)]
            val_samples = [s for s in val_samples if len(s.boxes)]
        if not train_samples:
            raise InputError("No training images; check the data folder or COCO file.")
        check_out_dir(Path(out_dir), resume)
        self.resume = resume
        self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress or no_progress
        self.cancel = cancel or CancelToken()
        self.echo = echo or log.info
        self.classes = list(config.classes or dataset_classes([*train_samples, *val_samples]))
        if not self.classes:
            raise InputError("The training data has no labelled boxes; nothing to learn.")
        self.data_info = dict(data_info or {})
        self.data_info.setdefault("hash", dataset_hash([*train_samples, *val_samples]))
        self.data_info.update(n_train=len(train_samples), n_val=len(val_samples))

        self.base = base or load_base(config.base_model)
        _check_image_size(config.short_side, self.base.model.config)
        self.device = choose_device(config.device)
        self.amp_dtype = autocast_dtype(self.device, config.precision) if self.device.type == "cuda" else None
        torch.manual_seed(config.seed)  # LoRA A matrices start from the seed
        self.model = add_lora(self.base.model, config)
        check_trainable(self.model)
        self.parameters = count_parameters(self.model)
        self.model.to(self.device)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]

        max_text_len = self.base.model.config.max_text_len
        self.collate = Collator(self.base.tokenizer, max_text_len)
        self.train_set = DetectionDataset(train_samples, self.classes, config.short_side, config.max_side,
                                          config.hflip_prob, config.shuffle_captions, config.seed)
        self.val_set = DetectionDataset(val_samples, self.classes, config.short_side, config.max_side) \
            if val_samples else None
        batches = math.ceil(len(train_samples) / config.batch_size)
        self.steps_per_epoch = math.ceil(batches / config.grad_accum)
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = one_cycle(self.optimizer, config, self.steps_per_epoch * config.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.epoch = 0  # finished epochs
        self.history: list[EpochResult] = []
        self.best_epoch = 0
        self._best_key: tuple[float, ...] | None = None

    # ------------------------------------------------------------------ one batch

    def _forward(self, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import contextlib

        import torch

        inputs = model_inputs(batch, self.device)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None \
            else contextlib.nullcontext()
        with autocast:
            outputs = self.model(**inputs)
        parts = set_loss(outputs.logits, outputs.pred_boxes, inputs["attention_mask"],
                         targets_to(batch, self.device), self.config)
        return outputs, parts

    def _loader(self, dataset: DetectionDataset, shuffle: bool, epoch: int = 0) -> Any:
        import torch

        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return torch.utils.data.DataLoader(dataset, batch_size=self.config.batch_size, shuffle=shuffle,
                                           generator=generator, collate_fn=self.collate,
                                           num_workers=self.config.num_workers,
                                           pin_memory=self.device.type == "cuda")

    def _optimizer_step(self) -> None:
        import torch

        self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    # ------------------------------------------------------------------ epochs

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training set; returns the mean losses."""
        import torch

        config, epoch = self.config, self.epoch
        self.model.train()
        self.train_set.set_epoch(epoch)
        loader = self._loader(self.train_set, shuffle=True, epoch=epoch)
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        seen = 0
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            self.cancel.check()
            _, parts = self._forward(batch)
            if not torch.isfinite(parts["loss"]):
                raise LoGSAMError(f"The training loss became {float(parts['loss'])} at epoch {epoch + 1}, batch "
                                  f"{i + 1}; lower the learning rate (--lr) or train with --precision fp32.")
            self.scaler.scale(parts["loss"] / config.grad_accum).backward()
            if (i + 1) % config.grad_accum == 0 or i + 1 == len(loader):
                self._optimizer_step()
            n = len(batch["targets"])
            seen += n
            for key in LOSS_KEYS:
                sums[key] += float(parts[key].detach()) * n
            self.progress("train", (i + 1) / len(loader),
                          f"epoch {epoch + 1}/{config.epochs} loss {sums['loss'] / seen:.4f}")
        return {key: value / seen for key, value in sums.items()}

    def evaluate(self, dataset: DetectionDataset | None = None) -> tuple[dict[str, float], Any]:
        """Mean losses and the detection scores (recall, AP per class) on ``dataset`` (default: validation)."""
        import torch

        from ..evaluation import score_detections

        dataset = dataset if dataset is not None else self.val_set
        if dataset is None or not len(dataset):
            raise InputError("No validation images.")
        self.model.eval()
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        predictions: list[list[Box]] = [[] for _ in range(len(dataset))]
        loader = self._loader(dataset, shuffle=False)
        with torch.no_grad():
            for i, batch in enumerate(loader):
                self.cancel.check()
                outputs, parts = self._forward(batch)
                for key in LOSS_KEYS:
                    sums[key] += float(parts[key]) * len(batch["targets"])
                probs = outputs.logits.float().sigmoid().cpu()
                boxes = outputs.pred_boxes.float().cpu()
                for b, caption in enumerate(batch["captions"]):
                    predictions[batch["indices"][b]] = output_boxes(
                        probs[b, :, : len(caption.ids)], boxes[b], caption, batch["sizes"][b],
                        self.config.box_threshold, self.config.text_threshold)
                self.progress("validate", (i + 1) / len(loader), f"{i + 1}/{len(loader)} batches")
        self.model.train()
        scores = score_detections(dataset.samples, predictions, self.classes, self.config.iou_threshold)
        return {key: value / len(dataset) for key, value in sums.items()}, scores

    def _is_best(self, record: EpochResult) -> bool:
        if record.val is None:
            key: tuple[float, ...] = (-record.train["loss"],)
        elif self.config.best_metric == "map":
            key = (record.map if record.map is not None else -1.0, -record.val["loss"])
        else:
            key = (-record.val["loss"],)
        if self._best_key is None or key > self._best_key:
            self._best_key = key
            return True
        return False

    def run(self) -> TrainResult:
        """Train to ``config.epochs`` (with ``resume``: from the last finished epoch's checkpoint)."""
        config = self.config
        check_out_dir(self.out_dir, self.resume)
        if self.resume:
            self.load_checkpoint()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.echo(f"LoRA rank {config.rank}, alpha {config.lora_alpha:g} on {config.base_model}: {self.parameters}")
        self.echo(f"{len(self.train_set)} training and {len(self.val_set) if self.val_set else 0} validation "
                  f"images; classes: {', '.join(self.classes)}; device {self.device}")
        if self.epoch >= config.epochs:
            self.echo(f"All {config.epochs} epochs are already done in {self.out_dir}.")
        while self.epoch < config.epochs:
            start = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            record = EpochResult(epoch=self.epoch + 1, train=self.train_epoch(), lr=lr)
            if self.val_set is not None:
                losses, scores = self.evaluate()
                record.val = losses
                record.recall = {c.label: _finite(c.recall) for c in scores.classes}
                record.ap = {c.label: _finite(c.ap) for c in scores.classes}
                record.mean_recall, record.map = _finite(scores.mean_recall), _finite(scores.map)
            self.epoch += 1
            record.seconds = time.perf_counter() - start
            record.best = self._is_best(record)
            if record.best:
                self.best_epoch = record.epoch
                save_adapter(self.model, self.out_dir)
            self.history.append(record)
            self.write_info()
            self.save_checkpoint()
            self.echo(record.summary(config.epochs))
        return TrainResult(self.out_dir, self.history, self.best_epoch, self.parameters, self.classes)

    # ------------------------------------------------------------------ files

    def info(self) -> dict[str, Any]:
        """The contents of ``training.json``."""
        return {
            "logsam_version": __version__,
            "format": "logsam-lora-adapter-1",
            "base_model": {"id": self.base.model_id, "sha256": self.base.sha256},
            "adapter_epoch": self.best_epoch,
            "epochs_done": self.epoch,
            "classes": self.classes,
            "caption": " ".join(f"{c} ." for c in self.classes),
            "data": self.data_info,
            "parameters": {"trainable": self.parameters.trainable, "total": self.parameters.total,
                           "fraction": self.parameters.fraction},
            "config": self.config.to_dict(),
            "history": [asdict(r) for r in self.history],
        }

    def write_info(self) -> None:
        write_text_atomic(self.out_dir / TRAINING_INFO, json.dumps(self.info(), indent=2) + "\n")

    def save_checkpoint(self) -> Path:
        import torch

        state = {name: p.detach().cpu() for name, p in self.model.named_parameters() if p.requires_grad}
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "config": self.config.to_dict(),
            "data_hash": self.data_info["hash"],
            "trainable": state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "history": [asdict(r) for r in self.history],
            "best_epoch": self.best_epoch,
            "best_key": list(self._best_key) if self._best_key is not None else None,
        }
        path = self.out_dir / CHECKPOINT
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)
        return path

    def load_checkpoint(self) -> None:
        """Restore the state of the last finished epoch; the run's settings and data must be the same."""
        import torch

        path = self.out_dir / CHECKPOINT
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling errors have no common base class
            raise CheckpointError(f"Cannot read the training checkpoint {path}: {error}") from error
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a LoGSAM training checkpoint.")
        changed = from_dict(checkpoint["config"]).differences(self.config)
        if changed:
            raise InputError(f"--resume must use the interrupted run's settings; changed: {'; '.join(changed[:4])}.")
        if checkpoint["data_hash"] != self.data_info["hash"]:
            raise InputError("--resume must use the same training data (the data hash differs from the "
                             "interrupted run's); start a new run with another --out folder.")
        state = checkpoint["trainable"]
        if set(state) != set(trainable_names(self.model)):
            raise CheckpointError(f"{path} does not fit this model's LoRA layers.")
        self.model.load_state_dict(state, strict=False)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["rng"])
        self.epoch = int(checkpoint["epoch"])
        self.history = [EpochResult(**r) for r in checkpoint["history"]]
        self.best_epoch = int(checkpoint["best_epoch"])
        key = checkpoint["best_key"]
        self._best_key = tuple(key) if key is not None else None
        self.echo(f"Resuming {self.out_dir} after epoch {self.epoch}.")


def train(config: TrainConfig, train_samples: Sequence[DetectionSample], val_samples: Sequence[DetectionSample],
          out_dir: str | Path, resume: bool = False, **kwargs: Any) -> TrainResult:
    """Train an adapter (see :class:`Trainer`)."""
    return Trainer(config, train_samples, val_samples, out_dir, resume=resume, **kwargs).run()
