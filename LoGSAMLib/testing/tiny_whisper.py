"""Tiny random Whisper models in the official file formats, for tests and the offline demo.

- ``whisper-large-v3`` / ``whisper-base``: openai-whisper checkpoints ``{'dims', 'model_state_dict'}``
  (fp16 tensors, like the published files) with the real vocabularies and mel sizes
  (large-v3: 128 mels, 51866 tokens; base: 80 mels, 51865 tokens) and tiny widths/depths.
- ``faster-whisper-large-v3`` / ``faster-whisper-base``: CTranslate2 folders converted from
  those checkpoints by :mod:`LoGSAMLib.asr.convert`.

The weights are random: transcripts are nonsense, but every loading and decoding code path
is the real one. :data:`REAL_DIMS` holds the published architectures for benchmarks.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

CITATION = ("Radford A et al. Robust Speech Recognition via Large-Scale Weak Supervision. ICML 2023. "
            "https://github.com/openai/whisper")

_TEXT_CTX, _AUDIO_CTX = 448, 1500

# The published architectures (same compute cost as the real models, whatever the weights).
REAL_DIMS: dict[str, dict[str, int]] = {
    name: {"n_mels": mels, "n_audio_ctx": _AUDIO_CTX, "n_audio_state": width, "n_audio_head": heads,
           "n_audio_layer": layers, "n_vocab": vocab, "n_text_ctx": _TEXT_CTX, "n_text_state": width,
           "n_text_head": heads, "n_text_layer": text_layers}
    for name, mels, width, heads, layers, text_layers, vocab in (
        ("tiny", 80, 384, 6, 4, 4, 51865),
        ("base", 80, 512, 8, 6, 6, 51865),
        ("small", 80, 768, 12, 12, 12, 51865),
        ("medium", 80, 1024, 16, 24, 24, 51865),
        ("large-v3", 128, 1280, 20, 32, 32, 51866),
        ("large-v3-turbo", 128, 1280, 20, 32, 4, 51866),
    )
}


def tiny_dims(n_mels: int, n_vocab: int, width: int = 32, heads: int = 2, layers: int = 2) -> dict[str, int]:
    return {"n_mels": n_mels, "n_audio_ctx": _AUDIO_CTX, "n_audio_state": width, "n_audio_head": heads,
            "n_audio_layer": layers, "n_vocab": n_vocab, "n_text_ctx": _TEXT_CTX, "n_text_state": width,
            "n_text_head": heads, "n_text_layer": layers}


TINY = {
    "whisper-large-v3": ("large-v3", tiny_dims(128, 51866)),
    "whisper-base": ("base", tiny_dims(80, 51865)),
}


def random_model(dims: dict[str, int], seed: int = 0, dtype: Any = None) -> Any:
    """A ``whisper.model.Whisper`` with seeded random weights (small normal, unit layer norms).

    ``dtype=torch.float16`` builds it in half precision from the start (large-v3: 3 GB instead
    of 6 GB), as the published checkpoints store it.
    """
    import torch
    from whisper.model import ModelDimensions, Whisper

    generator = torch.Generator().manual_seed(seed)
    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        model = Whisper(ModelDimensions(**dims))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("ln.weight", "ln_post.weight")):  # every LayerNorm (attn_ln, mlp_ln, ln, ...)
                param.fill_(1.0)
            elif name.endswith(("ln.bias", "ln_post.bias")):
                param.zero_()
            else:
                param.normal_(0.0, 0.02, generator=generator)
    return model.eval()


def checkpoint(model: Any, half: bool = True) -> dict[str, Any]:
    """The official checkpoint layout of a model (fp16 tensors as in the published files)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    return {"dims": asdict(model.dims), "model_state_dict": state}


# Random weights never pass Whisper's quality checks, so its temperature fallback would decode
# every window six times (five samples each) for nothing: decode these models once, briefly.
TINY_DECODE = {"temperatures": [0.0], "sample_len": 24}


def _entry(title: str, files: list[str], config: dict[str, Any]) -> dict[str, Any]:
    return {"stage": "asr", "title": title, "files": [{"name": name} for name in files], "license": "MIT",
            "citation": CITATION, "notes": "tiny random-weight test model in the official file format",
            "config": {**config, "decode": TINY_DECODE}}


def write(directory: str | Path, faster: bool | None = None) -> dict[str, dict[str, Any]]:
    """Write the tiny models under ``directory/<model_id>/`` and return their registry entries.

    ``faster``: also write the CTranslate2 folders (default: when ctranslate2 is installed).
    """
    import importlib.util

    import torch

    if faster is None:
        faster = importlib.util.find_spec("ctranslate2") is not None
    directory = Path(directory)
    entries: dict[str, dict[str, Any]] = {}
    for seed, (model_id, (name, dims)) in enumerate(TINY.items()):
        folder = directory / model_id
        folder.mkdir(parents=True, exist_ok=True)
        ckpt = checkpoint(random_model(dims, seed=seed))
        torch.save(ckpt, folder / f"{name}.pt")
        entries[model_id] = _entry(f"Whisper {name} (tiny random test model)", [f"{name}.pt"],
                                   {"backend": "openai-whisper", "whisper_name": name, "dims": dims})
        if faster:
            from ..asr.convert import convert_checkpoint

            fast_id = f"faster-whisper-{name}"
            out = convert_checkpoint(ckpt, directory / fast_id, quantization="float16")
            files = sorted(p.name for p in out.iterdir() if p.is_file())
            entries[fast_id] = _entry(f"faster-whisper {name} (tiny random test model)", files,
                                      {"backend": "faster-whisper", "whisper_name": name})
    return entries
