"""Grounding DINO architecture settings and the transformers model built from them, offline.

Settings use the names of the original config file (``GroundingDINO_SwinT_OGC.py``) so that a
registry entry (``"config": {"architecture": {...}}``) and the original code can be driven by
the same dict; anything left out is the real Swin-T OGC value. Tiny test models override a few.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

# The published Swin-T OGC configuration (GroundingDINO_SwinT_OGC.py + swin_T_224_1k).
DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "swin": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7,
             "pretrain_img_size": 224, "drop_path_rate": 0.2},
    "return_interm_indices": [1, 2, 3],
    "hidden_dim": 256,
    "nheads": 8,
    "enc_layers": 6,
    "dec_layers": 6,
    "dim_feedforward": 2048,
    "num_queries": 900,
    "num_feature_levels": 4,
    "enc_n_points": 4,
    "dec_n_points": 4,
    "max_text_len": 256,
    "pe_temperature": 20,
    "dec_pred_bbox_embed_share": True,
    "two_stage_bbox_embed_share": False,
    "fusion_droppath": 0.1,
}


def resolve_architecture(spec_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full architecture: defaults updated by ``spec_config["architecture"]`` (checked)."""
    overrides = dict((spec_config or {}).get("architecture") or {})
    arch = copy.deepcopy(DEFAULT_ARCHITECTURE)
    unknown = sorted(set(overrides) - set(arch))
    if unknown:
        raise CheckpointError(f"Unknown Grounding DINO architecture settings {unknown}; "
                              f"known: {', '.join(sorted(arch))}.")
    swin = overrides.pop("swin", None) or {}
    unknown = sorted(set(swin) - set(arch["swin"]))
    if unknown:
        raise CheckpointError(f"Unknown Swin settings {unknown}; known: {', '.join(sorted(arch['swin']))}.")
    arch["swin"].update(swin)
    arch.update(overrides)
    if arch["hidden_dim"] != 256:
        # The original code hard-codes 256 sine features for text positions.
        raise CheckpointError("Grounding DINO needs hidden_dim 256 (the original code fixes it).")
    return arch


def text_config_dict(source: Mapping[str, Any] | str | Path | None = None) -> dict[str, Any]:
    """A BERT config dict: given as a dict, read from a folder's config.json, or bert-base-uncased."""
    if source is None:
        from transformers import BertConfig

        return BertConfig().to_dict()  # BertConfig's defaults are bert-base-uncased
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    path = path / "config.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"Cannot read the text encoder config {path}: {error}") from error


def build_config(spec_config: Mapping[str, Any] | None = None,
                 text_config: Mapping[str, Any] | str | Path | None = None) -> Any:
    """The transformers ``GroundingDinoConfig`` matching the original architecture settings."""
    from transformers import GroundingDinoConfig, SwinConfig

    arch = resolve_architecture(spec_config)
    if text_config is None and spec_config and spec_config.get("text_config"):
        text_config = spec_config["text_config"]
    swin = arch["swin"]
    backbone = SwinConfig(
        embed_dim=swin["embed_dim"], depths=list(swin["depths"]), num_heads=list(swin["num_heads"]),
        window_size=swin["window_size"], image_size=swin["pretrain_img_size"],
        drop_path_rate=swin["drop_path_rate"],
        # original stage i (0-based) is transformers "stage{i+1}"
        out_indices=[i + 1 for i in arch["return_interm_indices"]],
    )
    text = text_config_dict(text_config)
    text.pop("architectures", None)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=arch["hidden_dim"],
        encoder_attention_heads=arch["nheads"], decoder_attention_heads=arch["nheads"],
        encoder_layers=arch["enc_layers"], decoder_layers=arch["dec_layers"],
        encoder_ffn_dim=arch["dim_feedforward"], decoder_ffn_dim=arch["dim_feedforward"],
        num_queries=arch["num_queries"], num_feature_levels=arch["num_feature_levels"],
        encoder_n_points=arch["enc_n_points"], decoder_n_points=arch["dec_n_points"],
        max_text_len=arch["max_text_len"], positional_embedding_temperature=arch["pe_temperature"],
        decoder_bbox_embed_share=arch["dec_pred_bbox_embed_share"],
        two_stage_bbox_embed_share=arch["two_stage_bbox_embed_share"],
        fusion_droppath=arch["fusion_droppath"],
        # the OGC model was trained without dropout
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, fusion_dropout=0.0,
        text_enhancer_dropout=0.0, layer_norm_eps=1e-5, two_stage=True, embedding_init_target=True,
    )


def build_model(spec_config: Mapping[str, Any] | None = None,
                text_config: Mapping[str, Any] | str | Path | None = None,
                init_weights: bool = True) -> Any:
    """A transformers ``GroundingDinoForObjectDetection`` (real Swin-T OGC unless overridden).

    ``spec_config``: a registry entry's ``config`` (its ``"architecture"`` dict overrides the
    defaults); ``text_config``: a BERT config dict or a folder with ``config.json`` (default
    bert-base-uncased). Built locally, never fetched. ``init_weights=False`` skips the random
    initialisation when weights are loaded right after (much faster for the real size).
    """
    from transformers import GroundingDinoForObjectDetection

    config = build_config(spec_config, text_config)
    if init_weights:
        return GroundingDinoForObjectDetection(config)
    from transformers.modeling_utils import no_init_weights

    with no_init_weights():
        return GroundingDinoForObjectDetection(config)
