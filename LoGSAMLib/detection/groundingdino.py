"""Grounding DINO Swin-T (+ the LoGSAM LoRA adapter) on 2D slices, through transformers.

Inference follows the original code's evaluation path: RGB, shorter side 800 (longer side at
most 1333, PIL bilinear), ImageNet normalisation, images of a batch padded bottom/right with a
pixel mask; the caption is lower-cased and ends with " ." (as ``preprocess_caption`` does).

Default thresholds: box 0.35 and text 0.25, the values of the Grounding DINO demo and of the
``predict_with_caption`` defaults in the code LoGSAM's adapter was trained with (its training
visualiser uses 0.3 / 0.2). A box is kept when its best token probability exceeds the box
threshold; its label is the caption phrase (text between " . ") holding its best token, kept only
when a token of that phrase exceeds the text threshold. The original returns the sub-word
tokens above the text threshold instead; the whole phrase keeps labels equal to the prompts.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..device import autocast_dtype, choose_device
from ..errors import CheckpointError, InputError, LoGSAMError, ModelMissingError
from ..types import Box
from .checkpoints import tie_canonical

log = logging.getLogger(__name__)

DEFAULT_BOX_THRESHOLD = 0.35
DEFAULT_TEXT_THRESHOLD = 0.25
SHORT_SIDE = 800
MAX_SIDE = 1333
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_TEXT_CACHE_SIZE = 16


# ----------------------------------------------------------------------- preprocessing


def resize_shape(height: int, width: int, short: int = SHORT_SIDE, longest: int = MAX_SIDE) -> tuple[int, int]:
    """(height, width) after scaling the shorter side to ``short`` unless the longer one would pass ``longest``.

    Same rounding as the original evaluation transform (``RandomResize([800], max_size=1333)``).
    """
    small, large = min(height, width), max(height, width)
    if large / small * short > longest:
        short = int(round(longest * small / large))
    if small == short:
        return height, width
    if width < height:
        return int(short * height / width), short
    return short, int(short * width / height)


def preprocess(image: np.ndarray, short: int = SHORT_SIDE, longest: int = MAX_SIDE) -> np.ndarray:
    """A uint8 slice (H, W) or (H, W, 3) -> normalised float32 (3, h, w) at the model's input size."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(f"Detector input must be uint8 (windowed) slices, got {array.dtype}.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3) or min(array.shape[:2]) < 1:
        raise InputError(f"Detector input must be (H, W) or (H, W, 3), got shape {array.shape}.")
    height, width = array.shape[:2]
    new_h, new_w = resize_shape(height, width, short, longest)
    pil = Image.fromarray(np.ascontiguousarray(array))
    if (new_h, new_w) != (height, width):
        pil = pil.resize((new_w, new_h), Image.BILINEAR)
    resized = np.asarray(pil, dtype=np.float32) / 255.0
    if resized.ndim == 2:  # grayscale: the three RGB channels are equal
        resized = np.repeat(resized[..., None], 3, axis=2)
    return np.ascontiguousarray(((resized - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))


def pad_batch(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pad (3, h, w) arrays bottom/right to one size -> (pixels (B, 3, H, W), mask (B, H, W), 1 = image)."""
    height = max(a.shape[1] for a in arrays)
    width = max(a.shape[2] for a in arrays)
    pixels = np.zeros((len(arrays), 3, height, width), dtype=np.float32)
    mask = np.zeros((len(arrays), height, width), dtype=np.int64)
    for i, array in enumerate(arrays):
        pixels[i, :, : array.shape[1], : array.shape[2]] = array
        mask[i, : array.shape[1], : array.shape[2]] = 1
    return pixels, mask


def normalize_caption(caption: str) -> str:
    """Lower case, stripped, ending with "." (what the model was trained on)."""
    text = " ".join(caption.lower().split())
    if not text:
        raise InputError("The detector caption is empty; give at least one class name, e.g. 'glioma .'.")
    return text if text.endswith(".") else text + " ."


@dataclass(frozen=True)
class CaptionTokens:
    """A tokenised caption and its phrases (token spans between special tokens)."""

    caption: str
    input_ids: Any  # LongTensor (1, L)
    attention_mask: Any
    token_type_ids: Any
    phrases: tuple[tuple[int, int, str], ...]  # (start, end) token indices, phrase text


def tokenize(tokenizer: Any, caption: str, max_len: int = 256) -> CaptionTokens:
    text = normalize_caption(caption)
    encoded = tokenizer([text], return_tensors="pt")
    ids = encoded["input_ids"][:, :max_len]
    special = set(tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", ".", "?"]))
    row = ids[0].tolist()
    phrases: list[tuple[int, int, str]] = []
    start = None
    for i, token in enumerate([*row, None]):
        if token is None or token in special:
            if start is not None:
                phrases.append((start, i, tokenizer.decode(row[start:i]).strip()))
            start = None
        elif start is None:
            start = i
    if not phrases:
        raise InputError(f"The caption {caption!r} has no words for the detector.")
    token_types = encoded.get("token_type_ids")
    return CaptionTokens(
        caption=text, input_ids=ids, attention_mask=encoded["attention_mask"][:, :max_len],
        token_type_ids=token_types[:, :max_len] if token_types is not None else None, phrases=tuple(phrases),
    )


# ----------------------------------------------------------------------- text cache


class _TextCache:
    """Replaces the BERT forward of a model: one pass per distinct caption (inference only).

    The transformers model runs its text encoder for every image batch; a caption's BERT
    features do not depend on the image, so they are computed once and broadcast.
    """

    def __init__(self, text_backbone: Any, size: int = _TEXT_CACHE_SIZE) -> None:
        self.backbone = text_backbone
        self.original = text_backbone.forward
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        self.size = size
        self.calls = 0  # real text-encoder passes
        text_backbone.forward = self.forward  # instance attribute: the state dict is unchanged
        text_backbone._logsam_text_cache = self

    @classmethod
    def install(cls, text_backbone: Any) -> _TextCache:
        """The cache already on this backbone (several detectors may share a model), or a new one."""
        current = getattr(text_backbone, "_logsam_text_cache", None)
        if current is not None and vars(text_backbone).get("forward") == current.forward:
            return current  # entries are keyed by device and autocast dtype
        return cls(text_backbone)

    def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None,
                position_ids: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        def run() -> Any:
            self.calls += 1
            return self.original(input_ids, attention_mask, token_type_ids, position_ids, *args, **kwargs)

        if not torch.is_inference_mode_enabled() or args or input_ids is None:
            return run()
        rows = [t for t in (input_ids, attention_mask, token_type_ids, position_ids) if t is not None]
        if any(not bool((t == t[:1]).all()) for t in rows):
            return run()  # different captions in one batch
        dtype = torch.get_autocast_dtype(input_ids.device.type) \
            if torch.is_autocast_enabled(input_ids.device.type) else None
        key = (str(input_ids.device), str(dtype), *(t[:1].cpu().numpy().tobytes() for t in rows))
        hidden = self.entries.get(key)
        if hidden is None:
            out = self.original(*(t[:1] if t is not None else None for t in
                                  (input_ids, attention_mask, token_type_ids, position_ids)), **kwargs)
            self.calls += 1
            hidden = out[0]
            self.entries[key] = hidden
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        expanded = hidden.expand(input_ids.shape[0], *hidden.shape[1:])
        return BaseModelOutput(last_hidden_state=expanded) if kwargs.get("return_dict", True) else (expanded,)


# ----------------------------------------------------------------------- detector


class GroundingDinoDetector:
    """Batched Grounding DINO over 2D slices (see the module docstring for the conventions)."""

    name = "groundingdino"

    def __init__(self, model: Any, tokenizer: Any, device: Any = None, precision: str | None = None,
                 box_threshold: float = DEFAULT_BOX_THRESHOLD, text_threshold: float = DEFAULT_TEXT_THRESHOLD,
                 batch_size: int = 4, short_side: int = SHORT_SIDE, max_side: int = MAX_SIDE) -> None:
        import torch

        self.device = device if isinstance(device, torch.device) else choose_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.batch_size = max(1, int(batch_size))
        self.short_side, self.max_side = int(short_side), int(max_side)
        self._tokens: OrderedDict[str, CaptionTokens] = OrderedDict()
        self._text = _TextCache.install(model.model.text_backbone)
        self.run_model: Any = self.model  # the forward call; LoGSAMLib.runtime may swap in a CPU runtime

    @property
    def text_encoder_calls(self) -> int:
        """How many times BERT actually ran (captions are cached)."""
        return self._text.calls

    def _caption(self, caption: str) -> CaptionTokens:
        tokens = self._tokens.get(caption)
        if tokens is None:
            tokens = tokenize(self.tokenizer, caption, self.model.config.max_text_len)
            self._tokens[caption] = tokens
            if len(self._tokens) > _TEXT_CACHE_SIZE:
                self._tokens.popitem(last=False)
        return tokens

    def _autocast(self) -> Any:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def predict(self, images: Sequence[np.ndarray], caption: str) -> tuple[Any, Any, CaptionTokens]:
        """Raw outputs: token probabilities (N, queries, L), boxes (N, queries, 4) normalised cxcywh."""
        import torch

        tokens = self._caption(caption)
        probs, boxes = [], []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(images), self.batch_size):
                batch = images[start:start + self.batch_size]
                chunk = [preprocess(img, self.short_side, self.max_side) for img in batch]
                pixels, mask = pad_batch(chunk)
                n = len(chunk)
                text = {k: getattr(tokens, k).expand(n, -1).to(self.device)
                        for k in ("input_ids", "attention_mask", "token_type_ids") if getattr(tokens, k) is not None}
                out = self.run_model(pixel_values=torch.from_numpy(pixels).to(self.device),
                                 pixel_mask=torch.from_numpy(mask).to(self.device), **text)
                length = tokens.input_ids.shape[1]
                probs.append(out.logits[..., :length].float().sigmoid().cpu())
                boxes.append(out.pred_boxes.float().cpu())
        if not probs:
            return torch.zeros(0), torch.zeros(0), tokens
        return torch.cat(probs), torch.cat(boxes), tokens

    def detect(self, images: Sequence[np.ndarray], caption: str, box_threshold: float | None = None,
               text_threshold: float | None = None) -> list[list[Box]]:
        box_t = self.box_threshold if box_threshold is None else float(box_threshold)
        text_t = self.text_threshold if text_threshold is None else float(text_threshold)
        images = list(images)
        if not images:
            return []
        probs, boxes, tokens = self.predict(images, caption)
        return [self._boxes(probs[i], boxes[i], tokens, np.asarray(img).shape[:2], box_t, text_t)
                for i, img in enumerate(images)]

    @staticmethod
    def _boxes(probs: Any, boxes: Any, tokens: CaptionTokens, size: tuple[int, int], box_t: float,
               text_t: float) -> list[Box]:
        height, width = size
        scores = probs.max(dim=1).values
        out: list[Box] = []
        for q in (scores > box_t).nonzero().flatten().tolist():
            # the phrase holding this query's best non-special token
            best = max(tokens.phrases, key=lambda p: float(probs[q, p[0]:p[1]].max()))
            if float(probs[q, best[0]:best[1]].max()) <= text_t:
                continue
            cx, cy, w, h = boxes[q].tolist()
            x0, x1 = np.clip([(cx - w / 2) * width, (cx + w / 2) * width], 0, width)
            y0, y1 = np.clip([(cy - h / 2) * height, (cy + h / 2) * height], 0, height)
            out.append(Box(float(x0), float(y0), float(x1), float(y1), float(scores[q]), best[2]))
        return sorted(out, key=lambda b: -b.score)


# ----------------------------------------------------------------------- loading


def _resolve_adapter(adapter: str | Path | None, model_id: str) -> tuple[Path | None, float]:
    """An adapter argument -> (local file or PEFT folder, LoRA scale for published files)."""
    if adapter is None or str(adapter) == "":
        return None, 1.0
    path = Path(adapter).expanduser()
    if path.exists():
        return path, 1.0
    from ..models import get_spec, model_path

    missing = ModelMissingError(f"LoRA adapter not found: {path}. Give an existing .pth file, a PEFT "
                                "adapter folder, or a registry id such as logsam-lora-dino.")
    if len(path.parts) > 1:
        raise missing
    try:
        spec = get_spec(str(adapter))
    except LoGSAMError:
        if path.suffix in (".pth", ".pt", ".bin", ".safetensors"):
            raise missing from None
        raise
    base = spec.config.get("base_model")
    if base and base != model_id:
        raise CheckpointError(f"The adapter {adapter} was made for {base}, not {model_id}.")
    # The published adapter used lora_alpha = rank, i.e. scale 1 whatever its rank.
    return model_path(str(adapter)), float(spec.config.get("lora_scale", 1.0))


def _load_official(path: Path) -> dict[str, Any]:
    import torch

    from .checkpoints import official_state_dict

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise CheckpointError(f"Cannot read {path} as a weights-only PyTorch checkpoint: {error}") from error
    return official_state_dict(checkpoint)


def convert_and_merge(base: Path, adapter: Path | None, scale: float, reference: dict[str, Any],
                      shared_head: bool = True) -> dict[str, Any]:
    """The transformers state dict of an official checkpoint with an optional adapter merged in."""
    from . import checkpoints as ck

    official = _load_official(base)
    if adapter is None:
        return ck.convert_official_state_dict(official, reference, shared_head)
    lora = ck.load_peft_folder(adapter) if adapter.is_dir() else ck.load_published_adapter(adapter, scale)
    if ck.namespace_of(lora, official, reference) == "official":
        # merge before the q/k/v split so that fused targets stay exact
        merged = ck.merge_lora(official, lora, canonical=lambda n: tie_canonical(n, shared_head))
        return ck.convert_official_state_dict(merged, reference, shared_head)
    state = ck.convert_official_state_dict(official, reference, shared_head)
    return ck.merge_lora(state, lora, canonical=lambda n: tie_canonical(n, shared_head))


def load_state_into(model: Any, state: dict[str, Any], shared_head: bool = True) -> None:
    """Load a (possibly alias-deduplicated) transformers state dict; anything else missing is an error."""
    result = model.load_state_dict(state, strict=False)
    loaded = {tie_canonical(k, shared_head) for k in state}
    missing = [k for k in result.missing_keys if tie_canonical(k, shared_head) not in loaded]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"Converted weights do not fit the model: missing {missing[:3]}, "
                              f"unexpected {list(result.unexpected_keys)[:3]}.")


def load_detector(model_id: str = "groundingdino-swint-ogc", adapter: str | Path | None = "logsam-lora-dino",
                  device: str | None = None, precision: str | None = None, cache: bool = True,
                  box_threshold: float | None = None, text_threshold: float | None = None,
                  batch_size: int = 4, runtime: str | None = "torch") -> GroundingDinoDetector:
    """Grounding DINO from the model cache, with a LoRA adapter merged in.

    ``adapter``: a registry id (default: the published LoGSAM adapter), a published-layout
    ``.pth``, a PEFT adapter folder, or None for the base model. The converted, merged weights
    are cached (``<cache>/converted/``) keyed by the input hashes, so the next start is fast.
    ``device``: None/"auto", "cpu", "cuda", "mps"; ``precision``: None (fp16 autocast on CUDA,
    fp32 elsewhere), "fp32", "fp16", "bf16". ``runtime``: "torch", "auto", "onnxruntime" or
    "openvino" (see ``LoGSAMLib.runtime``); the converted graph is keyed by the weights cache key.
    """
    from transformers import AutoTokenizer

    from ..models import get_spec, model_path
    from . import cache as weights_cache
    from .architecture import build_model, resolve_architecture, text_config_dict

    spec = get_spec(model_id)
    if spec.stage != "detection":
        raise LoGSAMError(f"{model_id} is a {spec.stage} model, not a detector.")
    config = dict(spec.config or {})
    base = model_path(model_id)
    text_dir = model_path(config.get("text_encoder", "bert-base-uncased"))
    adapter_path, scale = _resolve_adapter(adapter, model_id)
    arch = resolve_architecture(config)
    shared = bool(arch["dec_pred_bbox_embed_share"])
    model = build_model(config, text_dir, init_weights=False)
    key = weights_cache.cache_key(
        weights_cache.file_digest(base), weights_cache.adapter_digest(adapter_path),
        {"architecture": arch, "text": text_config_dict(text_dir), "scale": scale},
    )  # a SHA-256 of the checkpoint's and the adapter's SHA-256s
    state = weights_cache.load(key) if cache else None
    if state is None:
        state = convert_and_merge(base, adapter_path, scale, model.state_dict(), shared)
        if cache and weights_cache.save(key, state) is None:
            log.warning("could not write the converted Grounding DINO weights to the cache")
    load_state_into(model, state, shared)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(text_dir), local_files_only=True)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"Cannot load the tokenizer files in {text_dir}: {error}") from error
    detector = GroundingDinoDetector(
        model, tokenizer, device=device, precision=precision,
        box_threshold=config.get("box_threshold", DEFAULT_BOX_THRESHOLD) if box_threshold is None else box_threshold,
        text_threshold=config.get("text_threshold", DEFAULT_TEXT_THRESHOLD) if text_threshold is None
        else text_threshold,
        batch_size=batch_size,
    )
    from ..runtime import use_runtime

    use_runtime("groundingdino", detector, lambda: key, runtime, precision)
    return detector
