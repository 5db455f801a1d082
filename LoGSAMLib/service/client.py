"""A client of ``logsam serve``, standard library only (no torch, no numpy): all a remote user or Slicer needs.

    from LoGSAMLib.service.client import EngineClient

    client = EngineClient("https://gpu-server:8470", token, timeout=60.0, cafile=None)
    client.health()                                   # {"status": "ok", "api_version": 1, "limits": {...}, ...}
    client.extract("Left frontal glioma.")            # findings (synchronous)
    client.transcribe("dictation.wav", language="de") # the transcript dict (a queued job, waited for)
    job = client.submit_run("t1.nii.gz", text="Left frontal glioma.", options={"plane": "axial"})
    job = client.submit_segment("t1.nii.gz", classes=["glioma"])            # or box_lps=((x,y,z),(x,y,z)), label=
    early = client.submit_detect("t1.nii.gz", text="Left frontal glioma.")  # search while the user reads;
                                                      # a run/segment submitted after it reuses the boxes
    client.status(job)                                # {"state": "queued|running|done|failed|cancelled", "stage",
                                                      #  "fraction", "message", "queue_position", "error", ...}
    client.wait(job, progress=callback, cancel=token) # polls; callback(stage, fraction, message); cancel: an object
                                                      # with .cancelled (CancelToken) or a callable returning bool
    report = client.fetch(job, [Path("seg.nii.gz"), Path("seg.seg.nrrd")], Path("seg.report.json"))
    client.cancel(job)

- **Versions.** The first call checks ``GET /version``; a different API version raises
  :class:`~LoGSAMLib.errors.VersionMismatchError` saying whether the client or the server needs the upgrade.
- **Errors.** Every failure is a :class:`~LoGSAMLib.errors.LoGSAMError` with one clear line: the server's
  own error type where it has one (``InputError`` for a bad volume, ``Cancelled`` ...), ``ServerError`` for
  refusals (401 wrong token, 413 too large), ``ServerConnectionError`` when the server cannot be reached or
  stops while a job runs (the job is then lost; nothing is written).
- **Results** are fetched once: ``fetch`` downloads every requested format and the report in one archive, checks
  it, and only then moves the files into place, all or none. The server deletes the job afterwards.
- Uploads and downloads stream in 1 MiB pieces and report ``("upload"|"download", fraction, message)``.
- Volumes are sent as ``.nii.gz``, ``.nii``, ``.nrrd`` or ``.mha`` (convert DICOM first); audio as WAV, FLAC,
  MP3, OGG, M4A, WEBM or OPUS.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import ssl
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, errors
from ..errors import Cancelled, InputError, LoGSAMError, ServerConnectionError, ServerError, VersionMismatchError
from . import API_HEADER, API_VERSION

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm", ".opus")
FINISHED = ("done", "failed", "cancelled")
_CHUNK = 1024 * 1024
Progress = Callable[[str, float, str], None]


def _no_progress(stage: str, fraction: float, message: str = "") -> None:
    pass


def _suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    name = path.name.lower()
    for suffix in allowed:
        if name.endswith(suffix):
            return suffix
    raise InputError(f"{path.name}: a server takes a {what} as {', '.join(allowed)}; convert it first.")


def _megabytes(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _is_cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if callable(cancel):
        return bool(cancel())
    return bool(getattr(cancel, "cancelled", False))


class EngineClient:
    """Talks to one ``logsam serve`` at ``url`` with the bearer ``token``. Thread-safe: one connection per call."""

    api_version = API_VERSION

    def __init__(self, url: str, token: str, timeout: float = 60.0, *, cafile: str | os.PathLike | None = None,
                 poll_s: float = 0.25) -> None:
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError(f"Server URL {url!r} is not http(s)://host:port.")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.poll_s = poll_s
        self._parsed = parsed
        self._context = ssl.create_default_context(cafile=os.fspath(cafile) if cafile else None) \
            if parsed.scheme == "https" else None
        self._checked = False
        self._limits: dict[str, int] | None = None

    # ------------------------------------------------------------------ plain calls

    def version(self) -> dict[str, Any]:
        """The server's name, API version and LoGSAM version (no token needed)."""
        return self._call("GET", "/version", check=False, auth=False)

    def check_version(self) -> dict[str, Any]:
        """Raise :class:`VersionMismatchError` unless the server speaks this client's API version."""
        info = self.version()
        server_api = int(info.get("api_version", -1))
        if server_api != self.api_version:
            older = "client (LoGSAM on this machine)" if server_api > self.api_version else \
                "server (LoGSAM on the server machine)"
            raise VersionMismatchError(
                f"API version mismatch: this client (LoGSAM {__version__}) speaks API {self.api_version}, the "
                f"server at {self.url} (LoGSAM {info.get('version', '?')}) API {server_api}; upgrade the {older}.")
        self._checked = True
        return info

    def health(self) -> dict[str, Any]:
        info = self._call("GET", "/v1/health")
        self._limits = info.get("limits")
        return info

    def models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/models")["models"]

    def verify_models(self, model_id: str | None = None) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/models/verify", {"model_id": model_id})["results"]

    def extract(self, text: str) -> dict[str, Any]:
        """The findings of a dictation, as ``logsam extract --json`` prints them."""
        return self._call("POST", "/v1/extract", {"text": text})

    # ------------------------------------------------------------------ jobs

    def transcribe(self, audio_path: str | os.PathLike, language: str | None = None, *,
                   options: dict[str, Any] | None = None, progress: Progress | None = None,
                   cancel: Any = None) -> dict[str, Any]:
        """Upload, transcribe and return the transcript dict (``text``, ``language``, ``translation``,
        ``cross_check``, ...)."""
        job_id = self.submit_transcribe(audio_path, language, options=options, progress=progress)
        self.wait(job_id, progress, cancel)
        return self.fetch(job_id, [], None)

    def submit_transcribe(self, audio_path: str | os.PathLike, language: str | None = None, *,
                          options: dict[str, Any] | None = None, progress: Progress | None = None) -> str:
        """Upload the audio and queue its transcription; returns the job id (for a caller that polls)."""
        audio = self.upload(audio_path, "audio", progress)
        body = {"audio": audio, "language": language, "options": options}
        return self._queue("/v1/transcribe", body)

    def submit_run(self, volume_path: str | os.PathLike, *, text: str | None = None,
                   audio_path: str | os.PathLike | None = None, options: dict[str, Any] | None = None,
                   progress: Progress | None = None) -> str:
        """Upload the volume (and audio) and queue the whole method; returns the job id."""
        if (text is None) == (audio_path is None):
            raise InputError("Give either text or audio_path.")
        volume = self.upload(volume_path, "volume", progress)
        audio = self.upload(audio_path, "audio", progress) if audio_path is not None else None
        body = {"volume": volume, "audio": audio, "text": text, "options": options}
        return self._queue("/v1/run", body)

    def submit_segment(self, volume_path: str | os.PathLike, *, classes: Sequence[str] | None = None,
                       box_lps: Sequence[Sequence[float]] | None = None, label: str | None = None,
                       options: dict[str, Any] | None = None, progress: Progress | None = None) -> str:
        """Upload the volume and queue a segmentation from classes or a 3D box (two LPS corners, mm)."""
        if (box_lps is None) == (not classes):
            raise InputError("Give either classes or box_lps.")
        volume = self.upload(volume_path, "volume", progress)
        body = {"volume": volume, "classes": list(classes) if classes else None,
                "box_lps": [list(map(float, p)) for p in box_lps] if box_lps is not None else None,
                "label": label, "options": options}
        return self._queue("/v1/segment", body)

    def submit_detect(self, volume_path: str | os.PathLike, *, text: str | None = None,
                      classes: Sequence[str] | None = None, options: dict[str, Any] | None = None,
                      progress: Progress | None = None) -> str:
        """Queue the slice search alone (early detection, while the user reviews the findings). A run or
        segment of the same volume, prompt and options submitted after it reuses its boxes (on a server with
        one worker, the default). Cancel it when the text changes; there is nothing to fetch."""
        if (text is None) == (not classes):
            raise InputError("Give either text or classes.")
        volume = self.upload(volume_path, "volume", progress)
        body = {"volume": volume, "text": text, "classes": list(classes) if classes else None, "options": options}
        return self._queue("/v1/detect", body)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{_quote(job_id)}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{_quote(job_id)}/cancel", {})

    def wait(self, job_id: str, progress: Progress | None = None, cancel: Any = None) -> dict[str, Any]:
        """Poll until the job is done and return its status; raise its error if it failed or was cancelled."""
        progress = progress or _no_progress
        asked_to_cancel = False
        delay = min(0.05, self.poll_s)
        last = None
        while True:
            status = self._poll(job_id)
            shown = (status["state"], status.get("stage"), status.get("fraction"), status.get("message"))
            if shown != last:
                last = shown
                if status["state"] == "queued":
                    ahead = status.get("queue_position") or 0
                    progress("queued", 0.0, f"{ahead} job(s) ahead" if ahead else "starting")
                elif status.get("stage"):
                    progress(status["stage"], float(status.get("fraction") or 0.0), status.get("message") or "")
            if status["state"] in FINISHED:
                break
            if not asked_to_cancel and _is_cancelled(cancel):
                self.cancel(job_id)
                asked_to_cancel = True
            time.sleep(delay)
            delay = min(self.poll_s, delay * 1.5)
        if status["state"] == "cancelled":
            raise Cancelled(status.get("error") or "Cancelled by the user; no output was written.")
        if status["state"] == "failed":
            raise _error_class(status.get("error_type"))(status.get("error") or "The job failed on the server.")
        return status

    def _queue(self, path: str, body: dict[str, Any]) -> str:
        """Queue a job on uploaded files; a server lost before it answered has lost the job too."""
        try:
            return self._call("POST", path, body)["job_id"]
        except ServerConnectionError as error:
            raise _lost(self.url, "the job was queued", error) from None

    def _poll(self, job_id: str, attempts: int = 3, pause_s: float = 0.5) -> dict[str, Any]:
        """The job's status; a dropped connection is retried a few times before the server counts as gone."""
        for attempt in range(attempts):
            try:
                return self.status(job_id)
            except ServerConnectionError as error:
                if attempt + 1 < attempts:
                    time.sleep(pause_s)
                    continue
                raise _lost(self.url, "the job ran", error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, job_id: str, outputs: Sequence[str | os.PathLike], report: str | os.PathLike | None,
              *, extra: dict[str, Any] | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Download the result once and write ``outputs`` (format by extension) and the JSON ``report``,
        all or none. ``extra`` keys (e.g. ``input``) are set in the report; ``outputs`` lists the paths written.
        Returns the report."""
        targets = [Path(p) for p in outputs]
        formats = [_output_suffix(p) for p in targets]
        query = urllib.parse.urlencode([("formats", f) for f in formats])
        with tempfile.TemporaryDirectory(prefix="logsam-fetch-") as tmp:
            bundle = Path(tmp) / "result.zip"
            self._call("GET", f"/v1/jobs/{_quote(job_id)}/result?{query}", download=bundle, progress=progress)
            try:
                with zipfile.ZipFile(bundle) as archive:
                    if archive.testzip() is not None:
                        raise zipfile.BadZipFile("a damaged member")
                    payload = json.loads(archive.read("report.json"))
                    names = [f"output{n}{f}" for n, f in enumerate(formats)]
                    for name in names:
                        archive.extract(name, tmp)
            except (zipfile.BadZipFile, KeyError, ValueError) as error:
                raise ServerError(f"The result from {self.url} is incomplete ({error}); nothing was written.") from None
            result = payload["report"]
            if extra:
                result.update(extra)
            if targets:
                result["outputs"] = [str(p) for p in targets]
            files = [(Path(tmp) / name, target) for name, target in zip(names, targets, strict=True)]
            if report is not None:
                text_file = Path(tmp) / "report.json"
                text_file.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
                files.append((text_file, Path(report)))
            _place_all(files)
        return result

    # ------------------------------------------------------------------ uploads

    def upload(self, path: str | os.PathLike, kind: str, progress: Progress | None = None) -> str:
        """Stream one file to the server; returns its upload id."""
        path = Path(path)
        suffix = _suffix(path, VOLUME_SUFFIXES if kind == "volume" else AUDIO_SUFFIXES, kind)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InputError(f"No such file: {path}") from None
        if self._limits is None:
            self.health()
        limit = (self._limits or {}).get("max_upload_bytes" if kind == "volume" else "max_audio_bytes")
        if limit is not None and size > limit:
            raise InputError(f"{path.name} is {_megabytes(size)}; the server at {self.url} accepts a {kind} of at "
                             f"most {_megabytes(limit)} (its --max-{'upload' if kind == 'volume' else 'audio'}-mb).")
        query = urllib.parse.urlencode({"kind": kind, "suffix": suffix})
        return self._call("POST", f"/v1/uploads?{query}", upload=path, progress=progress)["upload_id"]

    # ------------------------------------------------------------------ transport

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self._parsed.hostname, self._parsed.port
        if self._context is not None:
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *, upload: Path | None = None,
              download: Path | None = None, progress: Progress | None = None, check: bool = True,
              auth: bool = True) -> Any:
        if check and not self._checked:
            self.check_version()
        progress = progress or _no_progress
        headers = {API_HEADER: str(self.api_version), "User-Agent": f"LoGSAM-client/{__version__}"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        prefix = self._parsed.path or ""
        connection = self._connection()
        try:
            try:
                if upload is not None:
                    self._send_file(connection, prefix + path, headers, upload, progress)
                else:
                    data = None if body is None else json.dumps(body).encode()
                    if data is not None:
                        headers["Content-Type"] = "application/json"
                    connection.request(method, prefix + path, body=data, headers=headers)
                response = connection.getresponse()
                if response.status >= 400:
                    raise self._http_error(response)
                if download is not None:
                    _save(response, download, progress)
                    return None
                return json.loads(response.read() or b"null")
            except (OSError, http.client.HTTPException) as error:
                reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
                raise ServerConnectionError(
                    f"Cannot reach the LoGSAM server at {self.url} ({reason}); is `logsam serve` running there?"
                ) from error
        finally:
            connection.close()

    def _send_file(self, connection: http.client.HTTPConnection, path: str, headers: dict[str, str],
                   source: Path, progress: Progress) -> None:
        size = source.stat().st_size
        connection.putrequest("POST", path)
        for key, value in {**headers, "Content-Type": "application/octet-stream",
                           "Content-Length": str(size)}.items():
            connection.putheader(key, value)
        connection.endheaders()
        sent = 0
        with open(source, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                connection.send(chunk)
                sent += len(chunk)
                progress("upload", sent / max(1, size), f"{_megabytes(sent)} of {_megabytes(size)}")

    def _http_error(self, response: http.client.HTTPResponse) -> LoGSAMError:
        try:
            payload = json.loads(response.read() or b"{}")
        except ValueError:
            payload = {}
        detail = payload.get("detail") if isinstance(payload, dict) else None
        if not isinstance(detail, str):
            detail = f"HTTP {response.status} {response.reason}" + (f": {detail}" if detail else "")
        if response.status == 401:
            return ServerError(f"The server at {self.url} refused the token (HTTP 401): {detail}")
        if response.status == 426:
            return VersionMismatchError(detail)
        return _error_class(payload.get("error_type") if isinstance(payload, dict) else None)(detail)


def _error_class(name: str | None) -> type[LoGSAMError]:
    candidate = getattr(errors, name or "", None)
    if isinstance(candidate, type) and issubclass(candidate, LoGSAMError):
        return candidate
    return ServerError


def _quote(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def _output_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".seg.nrrd", *VOLUME_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    raise InputError(f"Cannot write {path}: use one of .seg.nrrd, {', '.join(VOLUME_SUFFIXES)}.")


def _save(response: http.client.HTTPResponse, target: Path, progress: Progress) -> None:
    total = int(response.getheader("Content-Length") or 0)
    done = 0
    with open(target, "wb") as handle:
        while chunk := response.read(_CHUNK):
            handle.write(chunk)
            done += len(chunk)
            progress("download", done / total if total else 0.0, _megabytes(done))
    if total and done != total:
        raise ServerConnectionError(f"The download stopped after {done} of {total} bytes; nothing was written.")


def _place_all(files: list[tuple[Path, Path]]) -> None:
    """Copy each source next to its target, then rename them all into place; on failure, none is left."""
    umask = os.umask(0)
    os.umask(umask)
    staged: list[tuple[Path, Path]] = []
    try:
        for source, target in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            os.close(fd)
            staged.append((Path(name), target))
            shutil.copyfile(source, name)
            os.chmod(name, 0o666 & ~umask)
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def _lost(url: str, when: str, error: ServerConnectionError) -> ServerConnectionError:
    return ServerConnectionError(
        f"Lost the LoGSAM server at {url} while {when} ({error.__cause__ or error}): it stopped or restarted, "
        "the job is lost and nothing was written. Start it and try again.")
