"""MedSAM: segment-anything's SAM ViT-B with MedSAM's own inference preprocessing.

MedSAM's reference inference (MedSAM_Inference.py) differs from plain SAM in ways that
change the masks, so each step is reproduced here:

- the slice is resized to 1024 x 1024 with ``skimage.transform.resize(order=3,
  preserve_range=True, anti_aliasing=True)``, cast to uint8 (truncating), min-max scaled
  to [0, 1] and fed to the encoder with **no** SAM pixel mean/std normalisation;
- boxes are scaled per axis (1024/W, 1024/H), so non-square slices are stretched;
- one mask per box (``multimask_output=False``); the 256 x 256 low-resolution logits go
  through a sigmoid first, then bilinear upsampling to the slice size, then ``> 0.5``.

The resize calls ``scipy.ndimage`` exactly as scikit-image does internally (Gaussian
anti-aliasing with sigma ``(factor - 1) / 2`` when shrinking, cubic spline ``zoom`` with
``mode="mirror"``, ``grid_mode=True``, output clipped to the input range): it matches
skimage to ~1e-12 (see the tests) without making scikit-image a runtime dependency.
cv2/PIL/torch "bicubic" are convolution kernels, not splines, and differ by a few grey
levels.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .base import Frame, PromptSegmenter
from .checkpoints import describe, load_strict, read_state_dict, sam_encoder_shape, sam_variant_name

IMAGE_SIZE = 1024  # encoder input; with 16-pixel patches a 64 x 64 embedding, 256 x 256 logits
PATCH_SIZE = 16

# segment-anything's ViT-B; a registry entry's "config" may override any of these (tiny test models).
VIT_B: dict[str, Any] = {
    "encoder_embed_dim": 768,
    "encoder_depth": 12,
    "encoder_num_heads": 12,
    "encoder_global_attn_indexes": [2, 5, 8, 11],
    "prompt_embed_dim": 256,
    "decoder_mlp_dim": 2048,
    "decoder_num_heads": 8,
    "iou_head_hidden_dim": 256,
}


def architecture(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """ViT-B with the overrides of a registry entry's ``config`` (other keys are ignored)."""
    config = config or {}
    model_type = config.get("model_type", "vit_b")
    if model_type != "vit_b":
        raise CheckpointError(f"MedSAM is a SAM ViT-B model; the registry entry says model_type={model_type!r}.")
    image_size = int(config.get("image_size", IMAGE_SIZE))
    if image_size != IMAGE_SIZE:
        raise CheckpointError(f"MedSAM runs at {IMAGE_SIZE} px; the registry entry says image_size={image_size}.")
    return {key: config.get(key, default) for key, default in VIT_B.items()}


def build_sam(arch: dict[str, Any]) -> Any:
    """segment-anything's ``Sam`` (as ``sam_model_registry["vit_b"]`` builds it) for ``arch``."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    embed = arch["prompt_embed_dim"]
    grid = IMAGE_SIZE // PATCH_SIZE
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=arch["encoder_depth"],
            embed_dim=arch["encoder_embed_dim"],
            img_size=IMAGE_SIZE,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch["encoder_num_heads"],
            patch_size=PATCH_SIZE,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(arch["encoder_global_attn_indexes"]),
            window_size=14,
            out_chans=embed,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=embed,
            image_embedding_size=(grid, grid),
            input_image_size=(IMAGE_SIZE, IMAGE_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=embed, mlp_dim=arch["decoder_mlp_dim"], num_heads=arch["decoder_num_heads"]
            ),
            transformer_dim=embed,
            iou_head_depth=3,
            iou_head_hidden_dim=arch["iou_head_hidden_dim"],
        ),
        # unused: MedSAM feeds [0, 1] images straight to the encoder (non-persistent buffers)
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def cubic_resize(channel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """skimage ``resize(order=3, mode="reflect", anti_aliasing=True, preserve_range=True)``
    of one 2D channel, through the same scipy.ndimage calls (float64 out)."""
    from scipy import ndimage

    source = channel.astype(np.float64)
    factors = np.divide(source.shape, shape)
    sigma = np.maximum(0.0, (factors - 1) / 2)
    filtered = ndimage.gaussian_filter(source, sigma, mode="mirror") if np.any(sigma > 0) else source
    out = ndimage.zoom(filtered, 1 / factors, order=3, mode="mirror", grid_mode=True)
    return np.clip(out, source.min(), source.max(), out=out)


def medsam_input(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) slice -> MedSAM's float32 (3, 1024, 1024) encoder input in [0, 1]."""
    size = (IMAGE_SIZE, IMAGE_SIZE)
    if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]):
        channels = [cubic_resize(image[..., 0], size)] * 3  # grayscale: resize once
    else:
        channels = [cubic_resize(image[..., c], size) for c in range(3)]
    resized = np.stack(channels).astype(np.uint8).astype(np.float32)  # MedSAM truncates to uint8
    low, high = resized.min(), resized.max()
    return (resized - low) / max(high - low, 1e-8)


class MedSAM(PromptSegmenter):
    """MedSAM ViT-B behind the :class:`~LoGSAMLib.segmentation.base.Segmenter` interface."""

    name = "medsam"

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: dict[str, Any] | None = None,
        device: str | None = None,
        precision: str | None = None,
    ) -> MedSAM:
        """Build SAM for ``config`` (default ViT-B) and load ``path`` (torch.load weights_only)."""
        arch = architecture(config)
        path = Path(path)
        state = read_state_dict(path)
        expected = sam_variant_name(arch["encoder_embed_dim"], arch["encoder_depth"])
        found = sam_encoder_shape(state)
        if found is None:
            raise CheckpointError(f"{path.name} is {describe(state)}, expected MedSAM ({expected}).")
        if found != (arch["encoder_embed_dim"], arch["encoder_depth"]):
            raise CheckpointError(f"{path.name} is {sam_variant_name(*found)}, expected {expected} (MedSAM).")
        model = build_sam(arch)
        load_strict(model, state, path.name, f"MedSAM ({expected})")
        return cls(model, device=device, precision=precision)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Frame]:
        height, width = image.shape[:2]
        return medsam_input(image), Frame(height, width, IMAGE_SIZE, IMAGE_SIZE)

    def scale_boxes(self, boxes: np.ndarray, frame: Frame) -> np.ndarray:
        return boxes / np.array([frame.width, frame.height, frame.width, frame.height]) * IMAGE_SIZE

    def postprocess(self, low_res_logits: Any, frame: Frame) -> Any:
        import torch
        import torch.nn.functional as F

        probabilities = torch.sigmoid(low_res_logits)  # MedSAM: sigmoid before upsampling
        return F.interpolate(
            probabilities, size=(frame.height, frame.width), mode="bilinear", align_corners=False
        )[:, 0]
