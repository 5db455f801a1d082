"""Drop-in replacements for the torch calls a stage makes, backed by a :class:`CompiledGraph`.

- :class:`RuntimeDetector` replaces ``GroundingDinoForObjectDetection.__call__`` (keyword
  tensors in, ``.logits`` / ``.pred_boxes`` out);
- :class:`RuntimeEncoder` replaces a segmenter's ``image_encoder`` (images in, embeddings out).

Graphs are traced at batch 1 and a fixed shape; a batch runs row by row (the CPU default is
batch 1 anyway). For ONNX Runtime the caption is padded to a bucket of 16, 32, 64... tokens with
masked padding tokens, which leaves the outputs of the real tokens unchanged (tested), so that
one graph per slice size serves every short caption. OpenVINO 2026.4 changes the class logits of
a padded caption (boxes stay equal), so its graphs are made per caption length.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .compiled import CompiledGraph, Notice, stderr_notice

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MIN_TEXT_BUCKET = 16


@contextlib.contextmanager
def exportable_logit() -> Iterator[None]:
    """``torch.special.logit`` as clamp + log(x / (1 - x)): the same values, and OpenVINO has no
    conversion rule for ``aten::special_logit``. Only active while a graph is traced."""
    import torch

    original = torch.special.logit

    def logit(x: Any, eps: float | None = None) -> Any:
        if eps is not None:
            x = x.clamp(eps, 1 - eps)
        return torch.log(x / (1 - x))

    torch.special.logit = logit
    try:
        yield
    finally:
        torch.special.logit = original


def text_bucket(length: int, limit: int) -> int:
    """The padded caption length: a power of two, at least 16, at most ``limit``."""
    return max(length, min(limit, max(MIN_TEXT_BUCKET, 2 ** math.ceil(math.log2(max(length, 1))))))


def _detector_graph(model: Any) -> Any:
    import torch

    class DetectorGraph(torch.nn.Module):
        """Positional tensors in, (logits, pred_boxes) out: what the exporters trace."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any, pixel_mask: Any, input_ids: Any, attention_mask: Any,
                    token_type_ids: Any) -> tuple[Any, Any]:
            with exportable_logit():
                out = self.model(pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=input_ids,
                                 attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.logits, out.pred_boxes

    return DetectorGraph().eval()


class RuntimeDetector:
    """Called like the transformers Grounding DINO model; runs on an ONNX Runtime / OpenVINO graph."""

    def __init__(self, model: Any, runtime: str, checkpoint_sha: str, precision: str | None = None,
                 threads: int | None = None, notice: Notice = stderr_notice, root: Path | None = None) -> None:
        self.model = model  # the PyTorch model: the fallback, and the module that is exported
        self.max_text_len = int(model.config.max_text_len)
        self.pad_text = runtime == "onnxruntime"  # see the module docstring
        self.graph = CompiledGraph(
            "groundingdino", runtime, checkpoint_sha, _detector_graph(model),
            ("pixel_values", "pixel_mask", *TEXT_INPUTS), threads=threads, precision=precision, notice=notice,
            about="per slice size (minutes for the real model)", root=root)

    @property
    def runtime(self) -> str:
        return "torch" if self.graph.failed else self.graph.runtime

    def __call__(self, pixel_values: Any, pixel_mask: Any, input_ids: Any, attention_mask: Any,
                 token_type_ids: Any = None, **kwargs: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        length = input_ids.shape[1]
        pad = text_bucket(length, self.max_text_len) - length if self.pad_text else 0
        text = [F.pad(t, (0, pad)) for t in (input_ids, attention_mask, token_type_ids)]
        logits, boxes = [], []
        for row in range(pixel_values.shape[0]):
            inputs = [pixel_values[row:row + 1], pixel_mask[row:row + 1], *(t[row:row + 1] for t in text)]
            outputs = self.graph.run(inputs)
            if outputs is None:
                return self.model(pixel_values=pixel_values, pixel_mask=pixel_mask, input_ids=input_ids,
                                  attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
            logits.append(torch.from_numpy(outputs[0]))
            boxes.append(torch.from_numpy(outputs[1]))
        return SimpleNamespace(logits=torch.cat(logits), pred_boxes=torch.cat(boxes))


class RuntimeEncoder:
    """Called like a SAM-style ``image_encoder``: (B, 3, S, S) float32 -> (B, C, h, w) embeddings."""

    def __init__(self, encoder: Any, model: str, runtime: str, checkpoint_sha: str, precision: str | None = None,
                 threads: int | None = None, notice: Notice = stderr_notice, root: Path | None = None) -> None:
        self.encoder = encoder
        self.graph = CompiledGraph(model, runtime, checkpoint_sha, encoder, ("images",), threads=threads,
                                   precision=precision, notice=notice, root=root)

    @property
    def runtime(self) -> str:
        return "torch" if self.graph.failed else self.graph.runtime

    def __call__(self, images: Any) -> Any:
        import torch

        rows = []
        for row in range(images.shape[0]):
            outputs = self.graph.run([images[row:row + 1].float()])
            if outputs is None:
                return self.encoder(images)
            rows.append(torch.from_numpy(outputs[0]))
        return torch.cat(rows).to(images.device)
