"""Training batches: detection samples -> detector-sized images, normalised boxes, captions with negatives.

Images go through the detector's own preprocessing (:func:`LoGSAMLib.detection.preprocess`:
RGB, shorter side 800, ImageNet normalisation; batches padded bottom/right with a pixel
mask), so the adapter sees at training what it sees in ``logsam run``. Boxes become
``(cx, cy, w, h)`` normalised by the image size, the model's output convention.

Every caption names all classes of the data set (``"glioma . meningioma . pituitary ."``):
the image's own class is the positive phrase, the others are negatives the detector learns
not to fire on. With ``shuffle_captions`` the order is drawn per sample and epoch (from the
seed, so runs repeat). Captions are built token by token, so each class's token span is exact;
the ids equal what the tokenizer gives for the caption text.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datasets import DetectionSample, read_image_uint8
from ..errors import InputError


class DetectionDataset:
    """Samples as model inputs (a map-style dataset for ``torch.utils.data.DataLoader``)."""

    def __init__(self, samples: Sequence[DetectionSample], classes: Sequence[str], short_side: int = 800,
                 max_side: int = 1333, hflip_prob: float = 0.0, shuffle_captions: bool = False,
                 seed: int = 0) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.short_side, self.max_side = short_side, max_side
        self.hflip_prob = hflip_prob
        self.shuffle_captions = shuffle_captions
        self.seed = seed
        self.epoch = 0
        unknown = sorted({label for s in self.samples for label in s.labels} - set(self.classes))
        if unknown:
            raise InputError(f"Boxes of classes {unknown} are not in the caption classes {self.classes}; "
                             "add them to 'classes' in the training config.")

    def set_epoch(self, epoch: int) -> None:
        """Caption orders and flips depend on (seed, epoch, index): the same in a resumed run."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..detection import preprocess

        sample = self.samples[index]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        image = read_image_uint8(sample.image_path)
        height, width = image.shape[:2]
        boxes = np.clip(sample.boxes, 0, [width, height, width, height]).astype(np.float32)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # boxes outside the image vanish
        boxes, labels = boxes[keep], [label for label, k in zip(sample.labels, keep, strict=True) if k]
        if rng.random() < self.hflip_prob:
            image = np.ascontiguousarray(image[:, ::-1])
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        order = list(self.classes)
        if self.shuffle_captions:
            rng.shuffle(order)
        return {
            "pixels": preprocess(image, self.short_side, self.max_side),
            "boxes": xyxy_to_cxcywh(boxes, width, height),
            "labels": labels,
            "order": order,
            "size": (height, width),
            "index": index,
        }


def xyxy_to_cxcywh(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel ``(x0, y0, x1, y1)`` -> ``(cx, cy, w, h)`` normalised by the image size."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scale = np.array([width, height, width, height], dtype=np.float32)
    x0, y0, x1, y1 = (boxes / scale).T
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=1).astype(np.float32)


@dataclass(frozen=True)
class Caption:
    """One caption's token ids and each class's token span ``[start, end)``."""

    ids: list[int]
    spans: dict[str, tuple[int, int]]

    def token_maps(self, labels: Sequence[str], length: int) -> np.ndarray:
        """``(len(labels), length)``: 1 on the tokens of each box's class (the positive map)."""
        maps = np.zeros((len(labels), length), dtype=np.float32)
        for row, label in enumerate(labels):
            start, end = self.spans[label]
            maps[row, start:end] = 1.0
        return maps


class CaptionBuilder:
    """Builds captions from class names with exact token spans (class tokens cached)."""

    def __init__(self, tokenizer: Any, max_text_len: int = 256) -> None:
        self.tokenizer = tokenizer
        self.max_text_len = max_text_len
        self.cls, self.sep, self.dot = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", "."])
        self._tokens: dict[str, list[int]] = {}

    def class_tokens(self, name: str) -> list[int]:
        tokens = self._tokens.get(name)
        if tokens is None:
            tokens = self.tokenizer(name.lower(), add_special_tokens=False)["input_ids"]
            if not tokens or self.dot in tokens:
                raise InputError(f"Class name {name!r} cannot be a caption phrase (empty, or contains '.').")
            self._tokens[name] = tokens
        return tokens

    def build(self, classes: Sequence[str]) -> Caption:
        ids = [self.cls]
        spans: dict[str, tuple[int, int]] = {}
        for name in classes:
            tokens = self.class_tokens(name)
            spans[name] = (len(ids), len(ids) + len(tokens))
            ids += [*tokens, self.dot]
        ids.append(self.sep)
        if len(ids) > self.max_text_len:
            raise InputError(f"The caption of {len(classes)} classes is {len(ids)} tokens, more than the "
                             f"detector's {self.max_text_len}; train with fewer or shorter class names.")
        return Caption(ids, spans)


def caption_text(classes: Sequence[str]) -> str:
    """The caption as text (what the detector is given at inference)."""
    return " ".join(f"{name.lower()} ." for name in classes)


class Collator:
    """Stacks dataset items into one model batch (padded images and captions) with targets."""

    def __init__(self, tokenizer: Any, max_text_len: int = 256) -> None:
        self.captions = CaptionBuilder(tokenizer, max_text_len)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        from ..detection.groundingdino import pad_batch

        pixels, pixel_mask = pad_batch([item["pixels"] for item in items])
        captions = [self.captions.build(item["order"]) for item in items]
        length = max(len(c.ids) for c in captions)
        input_ids = torch.zeros((len(items), length), dtype=torch.long)
        attention = torch.zeros((len(items), length), dtype=torch.long)
        targets = []
        for row, (item, caption) in enumerate(zip(items, captions, strict=True)):
            input_ids[row, : len(caption.ids)] = torch.tensor(caption.ids)
            attention[row, : len(caption.ids)] = 1
            targets.append({
                "boxes": torch.from_numpy(item["boxes"]),
                "token_maps": torch.from_numpy(caption.token_maps(item["labels"], length)),
            })
        return {
            "pixel_values": torch.from_numpy(pixels),
            "pixel_mask": torch.from_numpy(pixel_mask),
            "input_ids": input_ids,
            "attention_mask": attention,
            "token_type_ids": torch.zeros_like(input_ids),
            "targets": targets,
            "captions": captions,
            "sizes": [item["size"] for item in items],
            "labels": [item["labels"] for item in items],
            "indices": [item["index"] for item in items],
        }


def model_inputs(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """The tensors of a batch that the transformers model takes, on ``device``."""
    keys = ("pixel_values", "pixel_mask", "input_ids", "attention_mask", "token_type_ids")
    return {key: batch[key].to(device, non_blocking=True) for key in keys}


def targets_to(batch: dict[str, Any], device: Any) -> list[dict[str, Any]]:
    return [{key: value.to(device, non_blocking=True) for key, value in t.items()} for t in batch["targets"]]
