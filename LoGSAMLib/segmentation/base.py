"""The segmenter interface, ``load_segmenter``, and the machinery MedSAM and LiteMedSAM share.

Both models are SAM-shaped: an image encoder run once per slice, then a prompt encoder
and a mask decoder that take every box of that slice as one batch. They differ only in
how a slice becomes the encoder input and how low-resolution logits go back to the
slice (``preprocess`` / ``scale_boxes`` / ``postprocess`` below).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..device import autocast_dtype, choose_device
from ..errors import LoGSAMError
from ..progress import CancelToken, ProgressCallback

THRESHOLD = 0.5  # on probabilities, as both official inference scripts do
MASK_OUTPUTS = 4  # the mask decoder's single-mask output and its three multimask outputs

# segmenter name -> model id in the registry (the ids are accepted as names too)
SEGMENTER_MODELS = {"medsam": "medsam-vit-b", "litemedsam": "litemedsam"}


@runtime_checkable
class Segmenter(Protocol):
    """Boxes on a 2D slice in, one boolean mask per box out."""

    name: str

    def segment(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``image`` uint8 (H, W) or (H, W, 3); ``boxes`` (N, 4) xyxy pixels -> bool (N, H, W)."""
        ...

    def segment_many(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        batch_size: int = 4,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[np.ndarray]:
        """``segment`` for several slices, the image encoder batched over ``batch_size`` slices."""
        ...


def load_segmenter(name: str, device: str | None = None, precision: str | None = None,
                   runtime: str | None = "torch") -> Segmenter:
    """The segmenter ``name`` ("medsam" or "litemedsam") with its weights from the model cache.

    ``device``: None/"auto", "cpu", "cuda", "mps"; ``precision``: None (fp16 autocast on
    CUDA, fp32 elsewhere), "fp32", "fp16" or "bf16"; ``runtime``: "torch", "auto",
    "onnxruntime" or "openvino" for the image encoder (see ``LoGSAMLib.runtime``).
    """
    from ..models import get_spec, model_path

    key = name.lower()
    key = next((k for k, model_id in SEGMENTER_MODELS.items() if model_id == key), key)
    if key not in SEGMENTER_MODELS:
        raise LoGSAMError(f"Unknown segmenter {name!r}; choose one of: {', '.join(SEGMENTER_MODELS)}.")
    model_id = SEGMENTER_MODELS[key]
    config = dict(get_spec(model_id).config or {})
    path = model_path(model_id)
    if key == "medsam":
        from .medsam import MedSAM

        segmenter: PromptSegmenter = MedSAM.from_checkpoint(path, config=config, device=device, precision=precision)
    else:
        from .litemedsam import LiteMedSAM

        segmenter = LiteMedSAM.from_checkpoint(path, config=config, device=device, precision=precision)
    from ..detection.cache import file_digest
    from ..runtime import use_runtime

    use_runtime(key, segmenter, lambda: file_digest(path), runtime, precision)
    return segmenter


# ------------------------------------------------------------------------ input checks


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) view of a slice; grayscale is replicated to three channels."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"segmenters take uint8 slices, got {array.dtype}; window the slice to uint8 first")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (1, 3):
        return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array
    raise ValueError(f"a slice must be (H, W) or (H, W, 3), got shape {array.shape}")


def as_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 4) float64 xyxy boxes, corners ordered and clipped to the slice.

    Clipping keeps a box that a detector or a user drew partly outside the slice from
    prompting the model with coordinates it never saw in training.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.shape[-1] != 4 or array.ndim > 2:
        raise ValueError(f"boxes must be (N, 4) xyxy, got shape {array.shape}")
    array = array.reshape(-1, 4)
    if not np.isfinite(array).all():
        raise ValueError("boxes contain NaN or infinite coordinates")
    xs = np.clip(np.sort(array[:, [0, 2]], axis=1), 0, width)
    ys = np.clip(np.sort(array[:, [1, 3]], axis=1), 0, height)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)


# ------------------------------------------------------------------ shared machinery


@dataclass(frozen=True)
class Frame:
    """Where a slice sits inside the model input: the slice size and the resized content size."""

    height: int
    width: int
    content_height: int
    content_width: int


class PromptSegmenter:
    """A SAM-shaped model (``image_encoder``, ``prompt_encoder``, ``mask_decoder``) behind the
    :class:`Segmenter` interface. Subclasses give the model-specific pre/post-processing."""

    name = "sam"

    def __init__(self, model: Any, device: str | None = None, precision: str | None = None) -> None:
        self.device = choose_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.model = model.to(self.device).eval()
        self.encode: Any = self.model.image_encoder  # LoGSAMLib.runtime may swap in a CPU runtime

    # -- model-specific steps -----------------------------------------------------------

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Frame]:
        """uint8 (H, W, 3) slice -> float32 (3, S, S) encoder input and its frame."""
        raise NotImplementedError

    def scale_boxes(self, boxes: np.ndarray, frame: Frame) -> np.ndarray:
        """Slice-pixel boxes -> boxes in encoder-input pixels."""
        raise NotImplementedError

    def postprocess(self, low_res_logits: Any, frame: Frame) -> Any:
        """(N, 1, 256, 256) float32 logits -> (N, H, W) probability tensor."""
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------

    def segment(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return self.segment_many([image], [boxes], batch_size=1)[0]

    def segment_many(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        batch_size: int = 4,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[np.ndarray]:
        probabilities = self.probabilities_many(images, boxes, batch_size, progress=progress, cancel=cancel)
        return [p > THRESHOLD for p in probabilities]

    def probabilities(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The per-pixel mask probabilities (N, H, W) float32 that :meth:`segment` thresholds."""
        return self.probabilities_many([image], [boxes], batch_size=1)[0]

    def probabilities_many(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray],
        batch_size: int = 4,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[np.ndarray]:
        import torch

        if len(images) != len(boxes):
            raise ValueError(f"{len(images)} slices but {len(boxes)} box arrays")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        slices = [as_rgb(image) for image in images]
        prompts = [as_boxes(b, s.shape[0], s.shape[1]) for s, b in zip(slices, boxes, strict=True)]
        results: list[np.ndarray] = [np.zeros((0, *s.shape[:2]), dtype=np.float32) for s in slices]
        todo = [i for i, p in enumerate(prompts) if len(p)]  # slices without boxes skip the encoder
        for start in range(0, len(todo), batch_size):
            if cancel is not None:
                cancel.check()
            chunk = todo[start : start + batch_size]
            prepared = [self.preprocess(slices[i]) for i in chunk]
            batch = torch.from_numpy(np.stack([p for p, _ in prepared])).to(self.device)
            with torch.inference_mode():
                with self._autocast():
                    embeddings = self.encode(batch)
                    logits = [
                        self._decode(embeddings[row : row + 1], self.scale_boxes(prompts[i], frame))
                        for row, (i, (_, frame)) in enumerate(zip(chunk, prepared, strict=True))
                    ]
                for i, (_, frame), low_res in zip(chunk, prepared, logits, strict=True):  # fp32 from here
                    results[i] = self.postprocess(low_res.float(), frame).cpu().numpy()
            if progress is not None:
                done = start + len(chunk)
                progress("segment", done / len(todo), f"{self.name}: {done}/{len(todo)} slices")
        return results

    # -- internals -----------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _decode(self, embedding: Any, boxes: np.ndarray) -> Any:
        """All boxes of one slice through the prompt encoder and mask decoder as one batch."""
        import torch

        box_tensor = torch.as_tensor(boxes, dtype=torch.float32, device=self.device)[:, None, :]
        sparse, dense = self.model.prompt_encoder(points=None, boxes=box_tensor, masks=None)
        if self._every_output:  # all MASK_OUTPUTS per box, box-major, as (N * 4, 1, 256, 256)
            every, _ = self.model.mask_decoder.predict_masks(
                image_embeddings=embedding,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
            return every.reshape(-1, 1, *every.shape[-2:])
        low_res_logits, _ = self.model.mask_decoder(
            image_embeddings=embedding,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return low_res_logits

    # -- every mask the decoder offers (the core-only guard, LoGSAMLib.propagation) -----------

    _every_output = False

    def mask_candidates_many(
        self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], batch_size: int = 1
    ) -> list[np.ndarray]:
        """Per slice, bool (N, MASK_OUTPUTS, H, W): for each box the single-mask output that
        :meth:`segment_many` gives (first), then SAM's three multimask outputs. The decoder computes
        all four anyway; one call per slice. Not for concurrent use of one segmenter."""
        self._every_output = True
        try:
            probabilities = self.probabilities_many(images, boxes, batch_size)
        finally:
            self._every_output = False
        return [p.reshape(-1, MASK_OUTPUTS, *p.shape[1:]) > THRESHOLD for p in probabilities]
