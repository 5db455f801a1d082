"""The converted (and merged) transformers weights, cached as safetensors keyed by input hashes.

The key is the SHA-256 of: the base checkpoint's SHA-256, the adapter's (file, or every file
of a PEFT folder), the architecture and text configs, the LoRA scale, and ``CODE_VERSION``.
Any change to an input gives a new key, so a stale entry is never read. File hashes are
memoised by (size, mtime, inode) so that a warm start does not re-read 700 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_text_atomic

# Bump when the conversion or merge code changes what it produces.
CODE_VERSION = "gdino-convert-1"
_MEMO = "hashes.json"


def cache_root() -> Path:
    """``<model cache>/converted``."""
    from ..models import cache_dir

    return cache_dir() / "converted"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike, root: Path | None = None) -> str:
    """SHA-256 of a file, memoised in ``root/hashes.json`` by (size, mtime_ns, inode)."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    memo_path = (root or cache_root()) / _MEMO
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(path))
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    sha = _sha256(path)
    memo[str(path)] = {"stamp": stamp, "sha256": sha}
    try:
        write_text_atomic(memo_path, json.dumps(memo, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs re-hashing
    return sha


def adapter_digest(path: str | os.PathLike | None, root: Path | None = None) -> str:
    """The digest of an adapter file or PEFT folder (every file in it), or "none"."""
    if path is None:
        return "none"
    path = Path(path)
    if path.is_file():
        return file_digest(path, root)
    parts = [f"{p.relative_to(path)}:{file_digest(p, root)}" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_key(base_sha: str, adapter_sha: str, config: Mapping[str, Any]) -> str:
    """The cache key of one conversion: inputs plus ``CODE_VERSION``."""
    blob = json.dumps({"code": CODE_VERSION, "base": base_sha, "adapter": adapter_sha, "config": config},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_path(key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"groundingdino-{key[:32]}.safetensors"


def load(key: str, root: Path | None = None) -> dict[str, Any] | None:
    """The cached state dict for ``key``, or None (absent or unreadable)."""
    path = cached_path(key, root)
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("key") != key:
                return None
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception:  # a truncated or foreign file is simply rebuilt
        return None


def save(key: str, state: Mapping[str, Any], root: Path | None = None) -> Path | None:
    """Write ``state`` for ``key`` (one copy per tensor: tied aliases are dropped)."""
    from safetensors.torch import save_file

    unique: dict[str, Any] = {}
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for name in sorted(state, key=lambda n: (n.count("."), n)):
        tensor = state[name]
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if ident in seen:
            continue
        seen.add(ident)
        unique[name] = tensor.detach().clone().contiguous()  # safetensors refuses shared storage
    path = cached_path(key, root)
    try:
        with atomic_path(path) as tmp:
            save_file(unique, str(tmp), metadata={"key": key, "code": CODE_VERSION})
    except OSError:
        return None
    return path
