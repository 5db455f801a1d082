"""CPU inference runtimes (ONNX Runtime, OpenVINO) for the detector and the segmenters' image encoders.

A runtime is a property of a loaded model: ``load_detector`` / ``load_segmenter`` ask
:func:`choose_runtime` once and, when it names a runtime, swap the model's forward for a
wrapper with the same call signature (:mod:`.wrappers`). Stages never branch on it.

The converted graph is exported once per model checkpoint (SHA-256), runtime version and input
shape, kept in ``<model cache>/runtime/`` (:mod:`.cache`), and compiled at fp32: outputs equal
PyTorch eager within float rounding (``Testing/test_runtime.py``; ``benchmarks/runtime_bench.py``).
A conversion that fails falls back to PyTorch with one warning line.

Importing this package is light: the runtimes are imported only when a model is converted or run.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from ..errors import InputError

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
ENV_VAR = "LOGSAM_RUNTIME"  # the default for "auto" (e.g. "torch" to turn the runtimes off)

# What "auto" picks on a CPU, per model kind: the faster fp32 runtime measured by
# benchmarks/runtime_bench.py (benchmarks/README.md, "CPU runtimes"; 2 cores: LiteMedSAM encoder
# 4.0x on OpenVINO vs 2.3x on ONNX Runtime, MedSAM 2.1x vs 1.9x, embeddings equal to 1e-5, masks
# identical). Grounding DINO stays on PyTorch by default: OpenVINO is 2.1x faster (ONNX Runtime
# 1.3x) and equal per query on the tiny model, but with real-size random weights the selected
# queries differ (top-k near-ties, not yet shown otherwise), so it is an explicit option for now.
AUTO_CHOICE = {"groundingdino": "torch", "litemedsam": "openvino", "medsam": "openvino"}
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def check_runtime(name: str | None) -> str:
    """A runtime option, validated (None -> "auto")."""
    value = (name or "auto").lower()
    if value not in RUNTIMES:
        raise InputError(f"Unknown runtime {name!r}; use one of {', '.join(RUNTIMES)}.")
    return value


def installed(runtime: str) -> bool:
    module = _MODULES.get(runtime)
    return module is not None and importlib.util.find_spec(module) is not None


def choose_runtime(preference: str | None, device: Any, model: str, precision: str | None = None) -> str:
    """The runtime a model of kind ``model`` runs on: "torch", "onnxruntime" or "openvino".

    "auto" (the default; ``$LOGSAM_RUNTIME`` overrides it): PyTorch on a GPU, or with a reduced
    ``precision`` (autocast), else the measured faster runtime when it is installed. A runtime
    named explicitly is used on a CPU only (a GPU keeps PyTorch).
    """
    value = check_runtime(preference)
    if value == "auto":
        value = check_runtime(os.environ.get(ENV_VAR) or "auto")
    device_type = getattr(device, "type", str(device))
    if value == "torch" or device_type != "cpu":
        return "torch"
    if value == "auto":
        if precision not in (None, "fp32", "float32"):
            return "torch"
        value = AUTO_CHOICE.get(model, "torch")
    if value != "torch" and not installed(value):
        if check_runtime(preference) == value:
            raise InputError(f"--runtime {value} was requested but the {value} package is not installed; "
                             f"pip install {value}, or use --runtime torch.")
        return "torch"
    return value


def use_runtime(model: str, loaded: Any, checkpoint_sha: Callable[[], str], preference: str | None,
                precision: str | None = None) -> str:
    """Put a loaded detector or segmenter on the runtime :func:`choose_runtime` picks; returns it.

    ``model``: "groundingdino", "litemedsam" or "medsam". The detector's model call
    (``loaded.run_model``) or the segmenter's image encoder (``loaded.encode``) is replaced by a
    wrapper with the same signature; the graph is converted on first use. ``checkpoint_sha``
    gives the SHA-256 that keys the converted graphs (called only when a runtime is used).
    """
    runtime = choose_runtime(preference, loaded.device, model, precision)
    if runtime == "torch":
        return runtime
    from .wrappers import RuntimeDetector, RuntimeEncoder

    if model == "groundingdino":
        loaded.run_model = RuntimeDetector(loaded.model, runtime, checkpoint_sha(), precision)
    else:
        loaded.encode = RuntimeEncoder(loaded.model.image_encoder, model, runtime, checkpoint_sha(), precision)
    return runtime
