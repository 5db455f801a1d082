"""The two CPU runtimes behind one small interface: export a traced torch graph, open it, run it.

Both are compiled at fp32. OpenVINO's CPU plugin would otherwise run bf16 on CPUs with AMX/AVX512
bf16 (an accuracy change), and ``save_model`` would compress the weights to fp16: both are
turned off unless the user asks for bf16.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Session = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


class Backend:
    name = ""
    suffix = ""

    def version(self) -> str:
        raise NotImplementedError

    def export(self, module: Any, inputs: tuple[Any, ...], names: Sequence[str], path: Path) -> None:
        """Trace ``module(*inputs)`` (a tuple of tensors out) and write the graph to ``path``."""
        raise NotImplementedError

    def open(self, path: Path, threads: int, precision: str | None = None) -> Session:
        raise NotImplementedError


class OnnxRuntime(Backend):
    name = "onnxruntime"
    suffix = ".onnx"

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def export(self, module: Any, inputs: tuple[Any, ...], names: Sequence[str], path: Path) -> None:
        import torch

        with torch.no_grad():
            # The TorchScript exporter: the graph is traced at these shapes (static).
            torch.onnx.export(module, inputs, str(path), input_names=list(names), opset_version=17,
                              dynamo=False, do_constant_folding=True)

    def open(self, path: Path, threads: int, precision: str | None = None) -> Session:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            return session.run(None, dict(zip(names, arrays, strict=True)))

        return run


class OpenVino(Backend):
    name = "openvino"
    suffix = ".xml"

    def version(self) -> str:
        import openvino

        return openvino.get_version().split("-")[0]

    def export(self, module: Any, inputs: tuple[Any, ...], names: Sequence[str], path: Path) -> None:
        import openvino as ov
        import torch

        with torch.no_grad():
            model = ov.convert_model(module, example_input=inputs)
        ov.save_model(model, str(path), compress_to_fp16=False)

    def open(self, path: Path, threads: int, precision: str | None = None) -> Session:
        import openvino as ov

        hint = "bf16" if precision in ("bf16", "bfloat16") else "f32"
        compiled = ov.Core().compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            result = request.infer(list(arrays))
            return [np.array(result[output]) for output in compiled.outputs]

        return run


BACKENDS: dict[str, Backend] = {"onnxruntime": OnnxRuntime(), "openvino": OpenVino()}
