"""Write small, randomly initialised checkpoints in the exact official file formats.

``python -m LoGSAMLib.testing.tiny_models DIR`` writes one folder per model id
(``DIR/<model_id>/<file>``) and ``DIR/registry.json``, a registry override. With
``LOGSAM_HOME=DIR`` every ``logsam`` command then runs offline through the real
loading code (the outputs are meaningless: the weights are random).

Each stage contributes a writer module with ``write(directory) -> {model_id: entry}``;
an entry is a registry entry (see ``LoGSAMLib/models.py``) whose files already lie in
``directory/<model_id>/``. Sizes and SHA-256 are filled in here.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from ..atomic import write_text_atomic
from ..models import sha256_file

WRITER_MODULES = ("tiny_whisper", "tiny_gdino", "tiny_sam")


def build(directory: str | Path, writers: tuple[str, ...] = WRITER_MODULES) -> dict[str, dict]:
    """Write every tiny model and the registry override; return the override entries."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict] = {}
    for name in writers:
        module = importlib.import_module(f"{__package__}.{name}")
        entries.update(module.write(directory))
    for model_id, entry in entries.items():
        entry.setdefault("notes", "tiny random-weight test model in the official file format")
        for file in entry.get("files", []):
            local = directory / model_id / file["name"]
            file["size"] = local.stat().st_size
            file["sha256"] = sha256_file(local)
            file.setdefault("url", None)
    write_text_atomic(directory / "registry.json", json.dumps(entries, indent=2, sort_keys=True))
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    entries = build(args.directory)
    print(f"wrote {len(entries)} tiny models to {args.directory}: {', '.join(sorted(entries))}")
    print(f"use them with: export LOGSAM_HOME={args.directory.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
