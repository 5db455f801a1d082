"""Convert an official openai-whisper checkpoint to a faster-whisper (CTranslate2) model folder.

Offline and direct: the PyTorch weights are mapped onto CTranslate2's ``WhisperSpec``
(no Hugging Face download or intermediate model). The folder gets the same files as the
published faster-whisper conversions: ``model.bin``, ``config.json``, the vocabulary,
``tokenizer.json`` (so that ``faster_whisper.WhisperModel`` loads it offline too) and
``preprocessor_config.json`` (the mel size, 128 for large-v3).

``python -m LoGSAMLib.asr.convert large-v3.pt OUT_DIR [--quantization int8]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text_atomic
from .faster_backend import import_ctranslate2


@functools.lru_cache(maxsize=1)
def _byte_table() -> dict[int, str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def _byte_level_token(token: bytes) -> str:
    """GPT-2 byte-level spelling of a BPE token (what HF tokenizers and CTranslate2 vocabularies use)."""
    table = _byte_table()
    return "".join(table[b] for b in token)


def _whisper_tokenizer(n_vocab: int) -> Any:
    from whisper.tokenizer import get_tokenizer

    multilingual = n_vocab >= 51865
    num_languages = n_vocab - 51765 - int(multilingual)
    return get_tokenizer(multilingual, num_languages=num_languages)


def vocabulary(n_vocab: int) -> list[str]:
    """Every token string in id order: BPE tokens (byte-level spelling), then special and timestamp tokens."""
    tokenizer = _whisper_tokenizer(n_vocab)
    special = {rank: token for token, rank in tokenizer.special_tokens.items()}
    tokens = [special[i] if i in special else _byte_level_token(tokenizer.encoding.decode_single_token_bytes(i))
              for i in range(tokenizer.encoding.n_vocab)]
    if len(tokens) != n_vocab:
        raise ValueError(f"the Whisper tokenizer has {len(tokens)} tokens, the checkpoint {n_vocab}")
    return tokens


@functools.lru_cache(maxsize=1)
def _bpe_json() -> str:
    """The byte-level BPE part (identical for every multilingual Whisper vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    bpe_file = str(Path(__import__("whisper").__file__).parent / "assets" / "multilingual.tiktoken")
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # a local file: no copy in tiktoken's download cache
    try:
        vocab, merges = TikTokenConverter(vocab_file=bpe_file).extract_vocab_merges_from_model(bpe_file)
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous
    hf = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf.to_str()


def tokenizer_json(n_vocab: int) -> str:
    """A Hugging Face ``tokenizer.json`` equivalent to Whisper's tiktoken tokenizer (same ids)."""
    from tokenizers import AddedToken, Tokenizer

    tokenizer = _whisper_tokenizer(n_vocab)
    if tokenizer.encoding.name != "multilingual.tiktoken":
        raise ValueError("only multilingual Whisper vocabularies are supported")
    hf = Tokenizer.from_str(_bpe_json())
    specials = sorted(tokenizer.special_tokens.items(), key=lambda item: item[1])
    hf.add_special_tokens([AddedToken(token, special=True, normalized=False) for token, _ in specials])
    for token, rank in specials:
        if hf.token_to_id(token) != rank:
            raise ValueError(f"tokenizer.json id mismatch for {token}: {hf.token_to_id(token)} != {rank}")
    return hf.to_str()


def _linear(spec: Any, weight: np.ndarray, bias: np.ndarray | None = None) -> None:
    spec.weight = weight
    if bias is not None:
        spec.bias = bias


def _fused(spec: Any, weights: list[np.ndarray], biases: list[np.ndarray | None]) -> None:
    """Concatenate projections (q|k|v or k|v); Whisper's key projection has no bias: use zeros."""
    spec.weight = np.concatenate(weights)
    spec.bias = np.concatenate([b if b is not None else np.zeros(w.shape[0], w.dtype)
                                for w, b in zip(weights, biases, strict=True)])


def _layer_norm(spec: Any, sd: dict[str, np.ndarray], prefix: str) -> None:
    spec.gamma = sd[f"{prefix}.weight"]
    spec.beta = sd[f"{prefix}.bias"]


def _attention(spec: Any, sd: dict[str, np.ndarray], prefix: str, cross: bool) -> None:
    q, k, v, o = (f"{prefix}.{name}" for name in ("query", "key", "value", "out"))
    if cross:
        _linear(spec.linear[0], sd[f"{q}.weight"], sd[f"{q}.bias"])
        _fused(spec.linear[1], [sd[f"{k}.weight"], sd[f"{v}.weight"]], [None, sd[f"{v}.bias"]])
    else:
        _fused(spec.linear[0], [sd[f"{q}.weight"], sd[f"{k}.weight"], sd[f"{v}.weight"]],
               [sd[f"{q}.bias"], None, sd[f"{v}.bias"]])
    _linear(spec.linear[-1], sd[f"{o}.weight"], sd[f"{o}.bias"])


def _mlp(spec: Any, sd: dict[str, np.ndarray], prefix: str) -> None:
    _layer_norm(spec.layer_norm, sd, f"{prefix}.mlp_ln")
    _linear(spec.linear_0, sd[f"{prefix}.mlp.0.weight"], sd[f"{prefix}.mlp.0.bias"])
    _linear(spec.linear_1, sd[f"{prefix}.mlp.2.weight"], sd[f"{prefix}.mlp.2.bias"])


def build_spec(dims: dict[str, int], state_dict: dict[str, Any]) -> Any:
    """A CTranslate2 ``WhisperSpec`` holding the checkpoint's weights (in their stored dtype: fp16
    for the published checkpoints, which keeps the conversion of large-v3 within a few GB)."""
    import_ctranslate2()
    from ctranslate2.specs import whisper_spec

    sd = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in state_dict.items()}
    spec = whisper_spec.WhisperSpec(dims["n_audio_layer"], dims["n_audio_head"], dims["n_text_layer"],
                                    dims["n_text_head"])
    enc, dec = spec.encoder, spec.decoder
    _linear(enc.conv1, sd["encoder.conv1.weight"], sd["encoder.conv1.bias"])
    _linear(enc.conv2, sd["encoder.conv2.weight"], sd["encoder.conv2.bias"])
    enc.position_encodings.encodings = sd["encoder.positional_embedding"]
    _layer_norm(enc.layer_norm, sd, "encoder.ln_post")
    for i, layer in enumerate(enc.layer):
        prefix = f"encoder.blocks.{i}"
        _attention(layer.self_attention, sd, f"{prefix}.attn", cross=False)
        _layer_norm(layer.self_attention.layer_norm, sd, f"{prefix}.attn_ln")
        _mlp(layer.ffn, sd, prefix)

    dec.embeddings.weight = sd["decoder.token_embedding.weight"]
    dec.position_encodings.encodings = sd["decoder.positional_embedding"]
    _layer_norm(dec.layer_norm, sd, "decoder.ln")
    dec.projection.weight = sd["decoder.token_embedding.weight"]  # Whisper ties output and input embeddings
    for i, layer in enumerate(dec.layer):
        prefix = f"decoder.blocks.{i}"
        _attention(layer.self_attention, sd, f"{prefix}.attn", cross=False)
        _layer_norm(layer.self_attention.layer_norm, sd, f"{prefix}.attn_ln")
        _attention(layer.attention, sd, f"{prefix}.cross_attn", cross=True)
        _layer_norm(layer.attention.layer_norm, sd, f"{prefix}.cross_attn_ln")
        _mlp(layer.ffn, sd, prefix)

    tokenizer = _whisper_tokenizer(dims["n_vocab"])
    spec.config.suppress_ids = sorted(tokenizer.non_speech_tokens)
    spec.config.suppress_ids_begin = [tokenizer.encode(" ")[0], tokenizer.eot]
    spec.config.lang_ids = list(tokenizer.all_language_tokens)
    n_layers, n_heads = dims["n_text_layer"], dims["n_text_head"]
    spec.config.alignment_heads = [(layer, head) for layer in range(n_layers // 2, n_layers)
                                   for head in range(n_heads)]
    spec.register_vocabulary(vocabulary(dims["n_vocab"]))
    return spec


def convert_checkpoint(checkpoint: str | Path | dict[str, Any], output_dir: str | Path,
                       quantization: str | None = "float16") -> Path:
    """Write a faster-whisper model folder from an official checkpoint (file or loaded dict).

    ``quantization``: the stored weight type (the published conversions store float16;
    CTranslate2 converts to the compute type, e.g. int8, at load time).
    """
    ct2 = import_ctranslate2()
    if not isinstance(checkpoint, dict):
        import torch

        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    dims = dict(checkpoint["dims"])
    spec = build_spec(dims, checkpoint["model_state_dict"])

    class _SpecConverter(ct2.converters.Converter):
        def _load(self) -> Any:
            return spec

    output_dir = Path(output_dir)
    _SpecConverter().convert(str(output_dir), quantization=quantization, force=True)
    write_text_atomic(output_dir / "tokenizer.json", tokenizer_json(dims["n_vocab"]))
    preprocessor = {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": dims["n_mels"],
                    "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30, "n_fft": 400,
                    "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
                    "return_attention_mask": False, "processor_class": "WhisperProcessor"}
    write_text_atomic(output_dir / "preprocessor_config.json", json.dumps(preprocessor, indent=2))
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="official openai-whisper .pt file")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--quantization", default="float16", help="stored weight type (default float16)")
    args = parser.parse_args(argv)
    out = convert_checkpoint(args.checkpoint, args.output_dir, args.quantization)
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
