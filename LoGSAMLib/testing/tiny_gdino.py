"""Tiny Grounding DINO files in the official layouts (random weights), for tests and ``make demo``.

Writes ``groundingdino-swint-ogc/groundingdino_swint_ogc.pth`` (``{"model": state_dict}`` with
the original module names, BERT weights under ``bert.*``, the pooler and ``position_ids``
buffer that the released file carries), ``bert-base-uncased/`` (a tiny BERT config and a
tokenizer whose special tokens sit at bert-base-uncased's ids, which transformers' Grounding
DINO hard-codes) and ``logsam-lora-dino/logsam_lora_dino.pth`` (a random adapter in the
published PEFT layout: LoRA on the published targets under every alias of the shared box head,
the last box-head layer as plain trained weights).

The weights are built with our transformers model and written through the inverse key
mapping, so the original ``groundingdino`` package is not needed here; the tests load these
files into the original code and check it gives the same outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_text_atomic

MODEL_ID = "groundingdino-swint-ogc"
TEXT_ID = "bert-base-uncased"
ADAPTER_ID = "logsam-lora-dino"
CHECKPOINT_NAME = "groundingdino_swint_ogc.pth"
ADAPTER_NAME = "logsam_lora_dino.pth"
TOKENIZER_FILES = ("config.json", "vocab.txt", "tokenizer_config.json", "tokenizer.json")

# Small but complete: every module kind of Swin-T OGC (a shifted-window block in stage 3), two
# decoder layers so that the shared box head has aliases. hidden_dim stays 256 (the original
# code fixes it).
TINY_ARCHITECTURE: dict[str, Any] = {
    "swin": {"embed_dim": 16, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8], "window_size": 7},
    "enc_layers": 1,
    "dec_layers": 2,
    "dim_feedforward": 128,
    "num_queries": 20,
}
TINY_BERT: dict[str, Any] = {
    "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
    "layer_norm_eps": 1e-12, "pad_token_id": 0, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
}
WORDS = ("glioma", "meningioma", "pituitary", "tumor", "tumour", "adenoma", "brain", "lesion", "mass", "cat",
         "a", "the", "and", "of", "left", "right", "in", "no", ",")
LORA_RANK = 4
LOGIT_DAMPING = 0.1


def tiny_vocab() -> list[str]:
    """A vocabulary with [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, "."=1012, "?"=1029."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token, index in ((".", 1012), ("?", 1029)):
        vocab += [f"[unused{i}]" for i in range(len(vocab) - 4, index - 4)]
        vocab.append(token)
    return vocab + list(WORDS)


def write_text_encoder(folder: Path) -> Path:
    """config.json, vocab.txt, tokenizer_config.json and tokenizer.json of the tiny BERT."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    write_text_atomic(folder / "vocab.txt", "\n".join(vocab) + "\n")
    config = dict(TINY_BERT, vocab_size=len(vocab), architectures=["BertForMaskedLM"])
    write_text_atomic(folder / "config.json", json.dumps(config, indent=2))
    write_text_atomic(folder / "tokenizer_config.json", json.dumps({"do_lower_case": True, "model_max_length": 512}))
    fast = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    with atomic_path(folder / "tokenizer.json") as tmp:
        fast.backend_tokenizer.save(str(tmp))
    return folder


def official_state_dict(text_dir: Path, seed: int = 0) -> dict[str, Any]:
    """A random tiny Grounding DINO state dict with the original module names."""
    import torch

    from ..detection.architecture import build_model, resolve_architecture
    from ..detection.checkpoints import convert_hf_state_dict_to_official

    torch.manual_seed(seed)
    model = build_model({"architecture": TINY_ARCHITECTURE}, text_dir)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # no zero-initialised layer may hide a mapping error
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
        # smaller decoder outputs keep the token logits moderate: scores spread over (0, 1)
        model.model.decoder.layer_norm.weight.mul_(LOGIT_DAMPING)
        model.model.decoder.layer_norm.bias.mul_(LOGIT_DAMPING)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    arch = resolve_architecture({"architecture": TINY_ARCHITECTURE})
    official = convert_hf_state_dict_to_official(state, dec_layers=arch["dec_layers"])
    hidden = TINY_BERT["hidden_size"]
    official["bert.pooler.dense.weight"] = torch.randn(hidden, hidden, generator=generator) * 0.05
    official["bert.pooler.dense.bias"] = torch.zeros(hidden)
    official["bert.embeddings.position_ids"] = torch.arange(TINY_BERT["max_position_embeddings"])[None]
    return official


def published_adapter(official: dict[str, Any], rank: int = LORA_RANK, seed: int = 1) -> dict[str, Any]:
    """A random adapter state dict in the published layout for ``official``'s architecture."""
    import torch

    from ..detection.checkpoints import PUBLISHED_FULL_LAYER, published_lora_targets, tie_canonical

    arch = TINY_ARCHITECTURE
    generator = torch.Generator().manual_seed(seed)
    targets = published_lora_targets(arch["enc_layers"], arch["dec_layers"], TINY_BERT["num_hidden_layers"])
    out: dict[str, Any] = {}
    for module in targets:
        out_dim, in_dim = official[module + ".weight"].shape
        a = torch.randn(rank, in_dim, generator=generator) * 0.1
        b = torch.randn(out_dim, rank, generator=generator) * 0.1
        # a module of the shared box head is listed under every alias, as PEFT's state dict does
        for alias in [k[: -len(".weight")] for k in official if k.endswith(".weight")
                      and tie_canonical(k) == tie_canonical(module + ".weight")]:
            out[f"base_model.model.{alias}.lora_A.weight"] = a
            out[f"base_model.model.{alias}.lora_B.weight"] = b
    for leaf in ("weight", "bias"):
        value = official[f"{PUBLISHED_FULL_LAYER}.{leaf}"] + torch.randn(
            official[f"{PUBLISHED_FULL_LAYER}.{leaf}"].shape, generator=generator) * 0.1
        for alias in (PUBLISHED_FULL_LAYER, "transformer.decoder." + PUBLISHED_FULL_LAYER):
            out[f"base_model.model.{alias}.{leaf}"] = value
    return out


def write(directory: str | Path) -> dict[str, dict[str, Any]]:
    """Write the three tiny models under ``directory/<model_id>/``; return their registry entries."""
    import torch

    directory = Path(directory)
    text_dir = write_text_encoder(directory / TEXT_ID)
    official = official_state_dict(text_dir)
    (directory / MODEL_ID).mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / MODEL_ID / CHECKPOINT_NAME) as tmp:
        torch.save({"model": official}, tmp)
    (directory / ADAPTER_ID).mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / ADAPTER_ID / ADAPTER_NAME) as tmp:
        torch.save({"epoch": 0, "model": published_adapter(official), "losses": {"total_loss": 0.0}}, tmp)
    common = {"license": "Apache-2.0", "citation": "",
              "notes": "tiny random-weight test model in the official file format"}
    return {
        MODEL_ID: dict(common, stage="detection", title="Tiny Grounding DINO (random weights, original layout)",
                       files=[{"name": CHECKPOINT_NAME}],
                       config={"backbone": "swin_T_224_1k", "text_encoder": TEXT_ID,
                               "architecture": TINY_ARCHITECTURE}),
        TEXT_ID: dict(common, stage="tokenizer", title="Tiny BERT config and tokenizer",
                      files=[{"name": name} for name in TOKENIZER_FILES], config={}),
        ADAPTER_ID: dict(common, stage="lora", title="Tiny LoGSAM-layout LoRA adapter (random)",
                         files=[{"name": ADAPTER_NAME}],
                         config={"base_model": MODEL_ID, "rank": LORA_RANK, "lora_alpha": LORA_RANK,
                                 "format": "peft-lora-pth"}),
    }
