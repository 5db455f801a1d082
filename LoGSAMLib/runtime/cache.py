"""Where converted graphs live: ``<model cache>/runtime/<model>-<runtime>-<key>/``.

The key is the SHA-256 of the checkpoint's SHA-256, the runtime and its version, the input
signature (shapes are traced static) and ``CODE_VERSION``: a new checkpoint, runtime release or
export code gives a new folder, so a stale graph is never read. A folder is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Bump when the exported graphs change (wrapper modules, patches, export settings).
CODE_VERSION = "runtime-1"
META = "meta.json"


def runtime_root() -> Path:
    from ..models import cache_dir

    return cache_dir() / "runtime"


def graph_key(model: str, checkpoint_sha: str, runtime: str, version: str, signature: Any) -> str:
    blob = json.dumps({"code": CODE_VERSION, "model": model, "checkpoint": checkpoint_sha, "runtime": runtime,
                       "version": version, "signature": signature}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def graph_dir(model: str, runtime: str, key: str, root: Path | None = None) -> Path:
    return (root or runtime_root()) / f"{model}-{runtime}-{key[:24]}"


def cached_graph(folder: Path, filename: str, key: str) -> Path | None:
    """The graph file in ``folder`` when it is complete and made for ``key``."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = folder / filename
    return path if meta.get("key") == key and path.is_file() else None


def write_graph(folder: Path, filename: str, key: str, meta: dict[str, Any], export: Callable[[Path], None]) -> Path:
    """``export(path)`` into a temporary folder, then rename it to ``folder`` (all or nothing)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        export(work / filename)
        (work / META).write_text(json.dumps({**meta, "key": key}, indent=1, sort_keys=True), encoding="utf-8")
        if cached_graph(folder, filename, key) is None:
            if folder.exists():  # an incomplete or foreign folder
                shutil.rmtree(folder, ignore_errors=True)
            try:
                work.rename(folder)
            except OSError:  # another process has just written it
                if cached_graph(folder, filename, key) is None:
                    raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone after the rename; our copy if another won
    return folder / filename
