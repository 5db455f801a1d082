"""Timing helpers shared by every benchmark: medians after warm-up, peak memory, machine info, tables.

A benchmark module exposes ``run(...) -> list[dict]``; each dict is one table row. The keys
the runner understands (all optional except ``stage`` and ``name``):

- ``stage``: "asr" | "detection" | "segmentation" | "pipeline" | ...; ``name``: the variant
- ``status``: "ok" (default) | "failed" | "missing" | "skipped"
- ``median_s`` (seconds per ``unit``), ``min_s``, ``max_s``, ``repeats``, ``unit``
- ``peak_rss_mb`` (process high-water mark during the timed calls), ``peak_cuda_mb``
- ``ratio`` (baseline time / this time, same run) and ``vs`` (the baseline row's name)
- ``kind``: "measured" | "composed" (from measured per-call costs) | "estimated"
- ``weights``: "random" (real-size architecture) | "real" | "tiny"; ``note``: free text

Every speed claim is a ratio of two numbers measured in the same run on the same machine.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

RANDOM_WEIGHTS = ("random weights in the real-size architecture: the same compute cost as the trained "
                  "model, meaningless outputs")

# Row-key aliases, so that rows from every stage module print in one table.
_NAME_KEYS = ("name", "variant", "config", "label")
_TIME_KEYS = ("median_s", "seconds", "time_s", "median")
_PEAK_KEYS = ("peak_rss_mb", "peak_mb", "peak_memory_mb")


# ------------------------------------------------------------------------------ timing


def synchronize(device: Any = None) -> None:
    """Wait for queued GPU work so that a wall-clock time covers it (no-op on CPU)."""
    if device is not None and "cuda" in str(device):
        import torch

        torch.cuda.synchronize()


@dataclass
class Timing:
    """Wall-clock seconds of ``repeats`` calls after ``warmup`` untimed calls."""

    runs: list[float]
    warmup: int = 1

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs)

    @property
    def min_s(self) -> float:
        return min(self.runs)

    @property
    def max_s(self) -> float:
        return max(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s,
                "repeats": len(self.runs), "warmup": self.warmup, "runs_s": [round(r, 4) for r in self.runs]}


def time_it(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1, device: Any = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (GPU synchronised)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    runs = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        runs.append(time.perf_counter() - start)
    return Timing(runs, warmup)


# ------------------------------------------------------------------------------ memory


def _rss_mb(field_name: str) -> float | None:
    """VmRSS / VmHWM of this process from /proc (Linux), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _lifetime_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


@dataclass
class PeakMemory:
    """Peak memory of a block: process RSS high-water mark, and CUDA's allocator peak on a GPU.

    ``with PeakMemory(device) as memory: ...`` then ``memory.to_dict()``. Where the RSS peak
    cannot be reset (not Linux), the process-lifetime peak is reported and marked as such.
    """

    device: Any = None
    start_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None
    scope: str = "block"
    _cuda: bool = field(default=False, repr=False)

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self._cuda = self.device is not None and "cuda" in str(self.device)
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.scope = "block" if _reset_rss_peak() else "process lifetime"
        self.start_rss_mb = _rss_mb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_cuda_mb = torch.cuda.max_memory_allocated() / 2**20
        hwm = _rss_mb("VmHWM") if self.scope == "block" else None
        self.peak_rss_mb = hwm if hwm is not None else _lifetime_peak_mb()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"peak_rss_mb": _round(self.peak_rss_mb, 1)}
        if self.scope != "block":
            out["peak_rss_scope"] = self.scope
        if self.peak_cuda_mb is not None:
            out["peak_cuda_mb"] = _round(self.peak_cuda_mb, 1)
        return out


def measure(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1, device: Any = None) -> dict[str, Any]:
    """Median time over ``repeats`` calls after ``warmup``, and the peak memory of the timed calls."""
    for _ in range(warmup):
        fn()
    with PeakMemory(device) as memory:
        timing = time_it(fn, repeats=repeats, warmup=0, device=device)
    timing.warmup = warmup
    return {**timing.to_dict(), **memory.to_dict()}


def measure_many(fns: dict[str, Callable[[], Any]], repeats: int | dict[str, int] = 3, warmup: int = 1,
                 device: Any = None) -> dict[str, dict[str, Any]]:
    """``measure`` for several variants, interleaved round by round (A B C, A B C, ...).

    On a shared machine the load drifts during a run; interleaving exposes every variant to
    the same drift, so that their ratios stay fair. ``repeats`` may be an int or a dict
    name -> int (expensive variants timed fewer times); peak memory is per variant.
    """
    counts = {name: repeats[name] if isinstance(repeats, dict) else repeats for name in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    peaks: dict[str, list[PeakMemory]] = {name: [] for name in fns}
    for round_ in range(max(counts.values())):
        for name, fn in fns.items():
            if round_ >= counts[name]:
                continue
            with PeakMemory(device) as memory:
                synchronize(device)
                start = time.perf_counter()
                fn()
                synchronize(device)
                runs[name].append(time.perf_counter() - start)
            peaks[name].append(memory)
    out = {}
    for name in fns:
        memory = max(peaks[name], key=lambda p: p.peak_rss_mb or 0.0)
        cuda = [p.peak_cuda_mb for p in peaks[name] if p.peak_cuda_mb is not None]
        memory.peak_cuda_mb = max(cuda) if cuda else None
        out[name] = {**Timing(runs[name], warmup).to_dict(), **memory.to_dict(), "interleaved": True}
    return out


# ------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def busy_processes(min_cpu_percent: float = 20.0) -> list[str]:
    """Other processes using CPU right now (name and %), when psutil is installed; else []."""
    try:
        import psutil
    except ImportError:
        return []
    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name"]) if p.info["pid"] != me]
    for p in procs:
        try:
            p.cpu_percent(None)
        except (psutil.Error, OSError):
            pass
    time.sleep(0.5)
    busy = []
    for p in procs:
        try:
            cpu = p.cpu_percent(None)
        except (psutil.Error, OSError):
            continue
        if cpu >= min_cpu_percent:
            busy.append(f"{p.info['name']} {cpu:.0f}%")
    return busy


def machine_info(device: Any = "cpu") -> dict[str, Any]:
    """What the numbers were measured on (CPU, cores, threads, versions, GPU, load)."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores_usable": usable_cores(),
        "cores_logical": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15": load_average(),
        "memory_total_gb": _total_memory_gb(),
    }
    try:
        import torch

        info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "torch_interop_threads": torch.get_num_interop_threads()})
        if "cuda" in str(device) and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            info.update({"gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
                         "cuda": torch.version.cuda})
    except ImportError:
        info["torch"] = None
    for module in ("transformers", "whisper", "faster_whisper", "ctranslate2"):
        info[module] = _version(module)
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    return info


def _version(module: str) -> str | None:
    from importlib import metadata

    names = {"whisper": "openai-whisper", "faster_whisper": "faster-whisper"}
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return None


def _total_memory_gb() -> float | None:
    kb = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            kb = int(handle.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(kb / 2**20, 1)


# ------------------------------------------------------------------------------ rows, table, JSON


def row(stage: str, name: str, **fields: Any) -> dict[str, Any]:
    """A table row with the conventional keys (see the module docstring)."""
    return {"stage": stage, "name": name, "status": "ok", **fields}


def ratio(baseline_s: float | None, value_s: float | None) -> float | None:
    """How many times faster ``value_s`` is than ``baseline_s`` (None when either is missing)."""
    if not baseline_s or not value_s:
        return None
    return baseline_s / value_s


def _first(row_: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if row_.get(key) is not None:
            return row_[key]
    return None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def table_lines(rows: list[dict[str, Any]], markdown: bool = False) -> list[str]:
    """The rows as an aligned text table (or a Markdown table)."""
    header = ["stage", "variant", "median", "per", "runs", "peak MB", "speed-up", "how", "note"]
    body = []
    for r in rows:
        status = r.get("status", "ok")
        peak = _first(r, _PEAK_KEYS)
        cuda = r.get("peak_cuda_mb")
        peak_text = "-" if peak is None else f"{peak:.0f}"
        if cuda is not None:
            peak_text += f" (GPU {cuda:.0f})"
        speed = r.get("ratio")
        speed_text = "-" if speed is None else f"{speed:.1f}x" + (f" vs {r['vs']}" if r.get("vs") else "")
        how = r.get("kind") or ""
        if r.get("weights"):
            how = f"{how}, {r['weights']}" if how else str(r["weights"])
        note = r.get("note") or r.get("error") or ""
        if status != "ok":
            note = f"{status.upper()}: {note}"
        value = fmt_seconds(_first(r, _TIME_KEYS))
        if _first(r, _TIME_KEYS) is None and r.get("dice") is not None:  # accuracy rows
            value = f"Dice {r['dice']:.3f}"
        body.append([str(r.get("stage", "")), str(_first(r, _NAME_KEYS) or ""),
                     value, str(r.get("unit") or ""),
                     str(r.get("repeats") or "-"), peak_text, speed_text, how, str(note)])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in body]
        return lines
    widths = [max(len(h), *(len(cells[i]) for cells in body)) if body else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the note column is not padded
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() for cells in body]
    return lines


def print_table(rows: list[dict[str, Any]], file: TextIO | None = None, markdown: bool = False) -> None:
    print("\n".join(table_lines(rows, markdown)), file=file or sys.stdout, flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return _jsonable(value.item())
    return str(value)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (atomically: a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def log(message: str) -> None:
    """Progress lines go to stderr so that stdout keeps the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
