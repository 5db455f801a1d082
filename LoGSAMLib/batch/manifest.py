"""The batch manifest: one case a row, as CSV (with a header) or JSON Lines.

Columns / keys (paths relative to the manifest's folder unless absolute):

- ``volume`` (required): the MRI, as ``logsam run`` takes it.
- one of ``text`` (typed dictation), ``audio`` (recorded dictation) or ``prompt`` (class names,
  ``glioma``, or several joined by ``+``, as ``logsam segment --prompt``).
- ``case`` (optional): the case's name, used for its output files; default the volume's name.
- ``ground_truth`` (optional): a label map on the volume's grid (any value > 0 is tumor): Dice.
- ``plane``, ``segmenter`` (optional): per-case options; empty means the batch's.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import SUPPORTED_CLASSES
from ..errors import InputError

PLANES = ("axial", "coronal", "sagittal")
SEGMENTERS = ("medsam", "litemedsam")
COLUMNS = ("case", "volume", "text", "audio", "prompt", "ground_truth", "plane", "segmenter")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".dcm")


@dataclass(frozen=True)
class Case:
    """One unit of work: a volume with its dictation or prompt, and its options."""

    case: str
    volume: str
    text: str | None = None
    audio: str | None = None
    prompt: tuple[str, ...] = ()
    ground_truth: str | None = None
    plane: str | None = None  # None: the batch's
    segmenter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prompt": list(self.prompt)}


def read_manifest(path: str | os.PathLike) -> list[Case]:
    """Read and check every row; one clear line names the first bad row and what to fix."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The manifest {str(path)!r} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"Cannot read the manifest {str(path)!r}: {error}.") from None
    rows = _json_lines(text, path) if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else _csv_rows(text, path)
    if not rows:
        raise InputError(f"The manifest {str(path)!r} lists no case.")
    cases, seen = [], {}
    for line, row in rows:
        case = _case(row, path.parent, f"{path.name}, row {line}")
        if case.case in seen:
            raise InputError(f"{path.name}, row {line}: case name {case.case!r} is also on row {seen[case.case]}; "
                             "give each case its own name (column 'case').")
        seen[case.case] = line
        cases.append(case)
    return cases


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "volume" not in [f.strip() for f in reader.fieldnames]:
        raise InputError(f"{path.name}: the CSV header must name a 'volume' column "
                         f"(columns: {', '.join(COLUMNS)}).")
    rows = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise InputError(f"{path.name}, row {number}: more cells than header columns (quote text with commas).")
        clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        if any(clean.values()):
            rows.append((number, clean))
    return rows


def _json_lines(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path.name}, line {number}: not JSON ({error.msg}); one JSON object a line.") from None
        if not isinstance(row, dict):
            raise InputError(f"{path.name}, line {number}: a case must be a JSON object.")
        rows.append((number, row))
    return rows


def _case(row: dict[str, Any], base: Path, where: str) -> Case:
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise InputError(f"{where}: unknown column {unknown[0]!r}; use {', '.join(COLUMNS)}.")

    def value(key: str) -> str | None:
        item = row.get(key)
        if item is None or (isinstance(item, str) and not item.strip()):
            return None
        if isinstance(item, list) and key == "prompt":
            return "+".join(str(x) for x in item)
        if not isinstance(item, str):
            raise InputError(f"{where}: {key!r} must be text, not {type(item).__name__}.")
        return item.strip() if key != "text" else item

    def resolved(key: str) -> str | None:
        item = value(key)
        return None if item is None else str(base / Path(item).expanduser())

    volume = resolved("volume")
    if volume is None:
        raise InputError(f"{where}: no 'volume'.")
    sources = [key for key in ("text", "audio", "prompt") if value(key) is not None]
    if len(sources) != 1:
        raise InputError(f"{where}: give exactly one of 'text', 'audio' or 'prompt' "
                         f"(found {', '.join(sources) or 'none'}).")
    prompt: tuple[str, ...] = ()
    if value("prompt") is not None:
        prompt = tuple(dict.fromkeys(p.strip().lower() for p in value("prompt").split("+") if p.strip()))
        bad = [p for p in prompt if p not in SUPPORTED_CLASSES]
        if bad or not prompt:
            raise InputError(f"{where}: unknown prompt class {bad[0] if bad else ''!r}; use "
                             f"{', '.join(SUPPORTED_CLASSES)} (several joined by '+').")
    plane, segmenter = value("plane"), value("segmenter")
    if plane is not None and plane.lower() not in PLANES:
        raise InputError(f"{where}: plane {plane!r}; use {', '.join(PLANES)}.")
    if segmenter is not None and segmenter.lower() not in SEGMENTERS:
        raise InputError(f"{where}: segmenter {segmenter!r}; use {', '.join(SEGMENTERS)}.")
    name = value("case") or _volume_stem(volume)
    if not _NAME.match(name):
        raise InputError(f"{where}: case name {name!r} cannot name files; use letters, digits, '.', '_', '-' "
                         "(column 'case').")
    return Case(case=name, volume=volume, text=value("text"), audio=resolved("audio"), prompt=prompt,
                ground_truth=resolved("ground_truth"), plane=plane.lower() if plane else None,
                segmenter=segmenter.lower() if segmenter else None)


def _volume_stem(volume: str) -> str:
    name = Path(volume.rstrip("/")).name
    for suffix in _VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
