"""Device and precision choice, shared by every model stage (torch imported lazily)."""

from __future__ import annotations

from typing import Any

from .errors import LoGSAMError


def choose_device(preference: str | None = None) -> Any:
    """``None``/"auto": cuda, then mps, then cpu. Otherwise the named device, checked."""
    import torch

    pref = (preference or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise LoGSAMError("--device cuda was requested but no CUDA GPU is available; use --device cpu.")
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LoGSAMError("--device mps was requested but Apple MPS is not available; use --device cpu.")
    try:
        return torch.device(pref)
    except RuntimeError as error:
        raise LoGSAMError(f"Unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps.") from error


def autocast_dtype(device: Any, precision: str | None = None) -> Any:
    """The mixed-precision dtype for ``device``: fp16 on CUDA, None (fp32) on CPU by default.

    ``precision`` may force "fp32", "fp16" or "bf16".
    """
    import torch

    if precision in ("fp32", "float32"):
        return None
    if precision in ("bf16", "bfloat16"):
        return torch.bfloat16
    if precision in ("fp16", "float16"):
        return torch.float16
    return torch.float16 if device.type == "cuda" else None
