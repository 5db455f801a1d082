"""One torch module run on a CPU runtime: exported once per input signature, PyTorch as fallback."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BACKENDS, Session
from .cache import cached_graph, graph_dir, graph_key, write_graph

log = logging.getLogger(__name__)

Notice = Callable[[str], None]


def stderr_notice(message: str) -> None:
    print(f"logsam: {message}", file=sys.stderr, flush=True)


class CompiledGraph:
    """``run(inputs)`` for a module whose forward takes tensors and returns a tuple of tensors.

    The graph for each input signature (shapes and dtypes) is loaded from the cache or exported
    on first use (with a notice, as conversion can take minutes). Any failure to export, open or
    run switches this graph to ``fallback`` for good, with one warning line.
    """

    def __init__(self, model: str, runtime: str, checkpoint_sha: str, module: Any, names: Sequence[str],
                 threads: int | None = None, precision: str | None = None, notice: Notice = stderr_notice,
                 about: str = "", root: Path | None = None) -> None:
        self.model, self.runtime, self.checkpoint_sha = model, runtime, checkpoint_sha
        self.backend = BACKENDS[runtime]
        self.module, self.names = module, tuple(names)
        self.threads, self.precision = threads, precision
        self.notice, self.about = notice, about
        self.root = root  # where graphs are cached; None: <model cache>/runtime
        self.sessions: dict[tuple, Session] = {}
        self.failed: str | None = None  # the reason PyTorch is used instead
        self.conversions = 0  # graphs exported by this instance (the rest came from the cache)
        self._lock = threading.Lock()

    def _threads(self) -> int:
        import torch

        return int(self.threads or torch.get_num_threads())

    def _session(self, inputs: Sequence[Any]) -> Session:
        signature = tuple((tuple(t.shape), str(t.dtype)) for t in inputs)
        session = self.sessions.get(signature)
        if session is not None:
            return session
        version = self.backend.version()
        key = graph_key(self.model, self.checkpoint_sha, self.runtime, version, signature)
        folder = graph_dir(self.model, self.runtime, key, self.root)
        filename = "model" + self.backend.suffix
        path = cached_graph(folder, filename, key)
        if path is None:
            shape = " ".join("x".join(map(str, s)) for s, _ in signature)
            self.notice(f"converting {self.model} for {self.runtime} {version} at input {shape}, once "
                        f"{self.about}...")
            start = time.perf_counter()
            meta = {"model": self.model, "checkpoint_sha256": self.checkpoint_sha, "runtime": self.runtime,
                    "runtime_version": version, "signature": signature}
            path = write_graph(folder, filename, key, meta, lambda p: self._export(inputs, p))
            self.conversions += 1
            self.notice(f"converted {self.model} in {time.perf_counter() - start:.0f} s (cached in {folder})")
        session = self.backend.open(path, self._threads(), self.precision)
        self.sessions[signature] = session
        return session

    def _export(self, inputs: Sequence[Any], path: Any) -> None:
        import torch

        # Stages call models under inference_mode, where tracing fails (OpenVINO): trace outside
        # it, on ordinary copies of the inputs.
        with torch.inference_mode(False), torch.no_grad():
            self.backend.export(self.module, tuple(t.clone() for t in inputs), self.names, path)

    def run(self, inputs: Sequence[Any]) -> list[np.ndarray] | None:
        """The runtime's outputs (numpy) for the tensors ``inputs``; None once it has failed (the
        caller then runs the PyTorch module)."""
        if self.failed is not None:
            return None
        with self._lock:
            try:
                session = self._session(inputs)
                return session([np.ascontiguousarray(t.detach().cpu().numpy()) for t in inputs])
            except Exception as error:  # any export/compile/run failure: PyTorch gives the same outputs
                self.failed = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                log.debug("runtime failure", exc_info=True)
                self.notice(f"warning: {self.runtime} could not run {self.model} ({self.failed[:200]}); "
                            "using PyTorch instead")
                return None
