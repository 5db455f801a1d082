"""The FastAPI app of ``logsam serve``: versioned routes under ``/v1``, all but ``/version`` behind the token.

Uploads are raw request bodies (``POST /v1/uploads?kind=volume&suffix=.nii.gz``) streamed to a 0700
folder with a size cap; a job request then names its uploads by id. Nothing here logs a file name,
a transcript or a dictation.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from .. import __version__
from ..early_detection import DetectionCache
from ..errors import LoGSAMError
from . import API_HEADER, API_VERSION, VERSION_HEADER
from .auth import token_matches
from .engine import WorkerModels, execute, write_bundle
from .jobs import DONE, FINISHED, JobManager, private_folder, server_folder
from .limits import AUDIO_SUFFIXES, VOLUME_SUFFIXES, UploadRejected, check_volume, size_text
from .settings import ServeSettings

MAX_TEXT_CHARS = 20_000
MAX_JSON_BYTES = 1024 * 1024


class _VersionCheck:
    """Every response names the API version; a request from a client of another API version gets 426.
    A JSON request body must say its length and stay under :data:`MAX_JSON_BYTES` (uploads have their own limit)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["path"] != "/v1/uploads":  # JSON bodies are read whole: small, and of a known length
            length = headers.get(b"content-length")
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                return await _error(411, "Send a Content-Length.", "InputError")(scope, receive, send)
            if length is not None and (not length.isdigit() or int(length) > MAX_JSON_BYTES):
                return await _error(413, "The request body is too large.", "InputError")(scope, receive, send)
        claimed = headers.get(API_HEADER.lower().encode())
        exempt = scope["path"] in ("/version", "/v1/version")  # a client must always be able to ask
        if claimed is not None and not exempt and claimed != str(API_VERSION).encode():
            response = JSONResponse(status_code=426, content={
                "detail": _mismatch_message(claimed.decode(errors="replace")), "error_type": "VersionMismatchError",
                "api_version": API_VERSION, "version": __version__})
            return await response(scope, receive, self._with_headers(send))
        return await self.app(scope, receive, self._with_headers(send))

    @staticmethod
    def _with_headers(send: Any) -> Any:
        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (API_HEADER.encode(), str(API_VERSION).encode()),
                                      (VERSION_HEADER.encode(), __version__.encode())]
            await send(message)

        return wrapped


def _mismatch_message(client_api: str) -> str:
    try:
        newer_client = int(client_api) > API_VERSION
    except ValueError:
        newer_client = False
    which = "the server (LoGSAM on the server machine)" if newer_client else "the client (LoGSAM on this machine)"
    return (f"API version mismatch: the client speaks LoGSAM API {client_api}, the server API {API_VERSION} "
            f"(LoGSAM {__version__}); upgrade {which}.")


class RunRequest(BaseModel):
    volume: str
    audio: str | None = None
    text: str | None = None
    options: dict[str, Any] | None = None


class SegmentRequest(BaseModel):
    volume: str
    classes: list[str] | None = None
    box_lps: list[list[float]] | None = None
    label: str | None = None
    options: dict[str, Any] | None = None


class DetectRequest(BaseModel):
    volume: str
    text: str | None = None
    classes: list[str] | None = None
    options: dict[str, Any] | None = None


class TranscribeRequest(BaseModel):
    audio: str
    language: str | None = None
    options: dict[str, Any] | None = None


class ExtractRequest(BaseModel):
    text: str


class VerifyRequest(BaseModel):
    model_id: str | None = None


def _error(status: int, message: str, error_type: str = "ServerError") -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message, "error_type": error_type})


class EngineService:
    """The job queue and its folder for one app: started with the app's lifespan, or on first use where the
    host runs no lifespan; :meth:`stop` cancels the jobs and deletes every job folder."""

    def __init__(self, settings: ServeSettings, execute_job: Callable[[Any, Any], Any] | None = None,
                 make_state: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self._execute_job = execute_job
        self._make_state = make_state
        self._manager: JobManager | None = None
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def manager(self) -> JobManager:
        with self._lock:
            if self._stopped:
                raise HTTPException(status_code=503, detail="The LoGSAM server is stopping; try again once it runs.")
            if self._manager is None:
                settings = self.settings
                parent = Path(settings.work_dir) if settings.work_dir else Path(tempfile.gettempdir())
                parent.mkdir(parents=True, exist_ok=True)
                self._root = server_folder(parent)
                searches = DetectionCache()  # shared by the workers: an early search serves whichever runs the job
                self._manager = JobManager(
                    self._root,
                    self._execute_job or (lambda job, models: execute(job, models, settings.device,
                                                                      settings.precision)),
                    self._make_state or (lambda: WorkerModels(searches)), concurrency=settings.concurrency,
                    ttl_s=settings.job_ttl_s, sweep_interval_s=settings.sweep_interval_s)
            return self._manager

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            manager, root, self._manager, self._root = self._manager, self._root, None, None
        if manager is not None:
            manager.shutdown()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def create_app(settings: ServeSettings, execute_job: Callable[[Any, Any], Any] | None = None,
               make_state: Callable[[], Any] | None = None) -> FastAPI:
    """The app for ``settings``. Its :class:`EngineService` (``app.state.service``) starts with the app's
    lifespan and stops with it, deleting every job folder.

    ``execute_job(job, state)`` / ``make_state()`` replace where jobs run (default: this process's warm
    models); Ray Serve (``ray_serve.py``) passes its engine replicas here.
    """
    service = EngineService(settings, execute_job, make_state)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.manager  # noqa: B018 - start the workers now, not on the first request
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(title="LoGSAM engine", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # no unauthenticated API listing
    app.state.service = service
    app.add_middleware(_VersionCheck)

    def require_token(authorization: str | None = Header(None)) -> None:
        if not token_matches(authorization, settings.token):
            raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                detail="Missing or wrong token: pass the server's token (`logsam serve "
                                       "--print-token` on the server) with --token or LOGSAM_TOKEN.")

    def manager() -> JobManager:
        return service.manager

    @app.exception_handler(LoGSAMError)
    async def _logsam_error(request: Request, error: LoGSAMError) -> JSONResponse:
        return _error(400, str(error), type(error).__name__)

    @app.exception_handler(UploadRejected)
    async def _rejected(request: Request, error: UploadRejected) -> JSONResponse:
        return _error(error.status, error.message, "InputError")

    def version_info() -> dict[str, Any]:
        return {"name": "LoGSAM", "api_version": API_VERSION, "version": __version__}

    app.get("/version")(version_info)
    app.get("/v1/version")(version_info)

    auth = [Depends(require_token)]

    @app.get("/v1/health", dependencies=auth)
    def health() -> dict[str, Any]:
        jobs = manager()
        loaded = sorted({name for state in jobs.worker_states for name in state.loaded()})
        return {"status": "ok", **version_info(), "device": settings.device or "auto",
                "concurrency": settings.concurrency, "jobs": jobs.counts(), "limits": settings.limits(),
                "loaded_models": loaded, "job_ttl_s": settings.job_ttl_s}

    @app.get("/v1/models", dependencies=auth)
    def list_models() -> dict[str, Any]:
        from .. import models

        return {"models": [{"id": s.id, "stage": s.stage, "title": s.title, "size": s.size,
                            "cached": models.is_cached(s.id)} for s in models.registry().values()]}

    @app.post("/v1/models/verify", dependencies=auth)
    def verify_models(request: VerifyRequest) -> dict[str, Any]:
        from .. import models

        return {"results": [{"id": m, "file": f, "status": s} for m, f, s in models.verify(request.model_id)]}

    @app.post("/v1/extract", dependencies=auth)
    def extract(request: ExtractRequest) -> dict[str, Any]:
        from ..nlp import class_summary
        from ..nlp import extract as extract_findings

        if len(request.text) > MAX_TEXT_CHARS:
            raise UploadRejected(413, f"The text is longer than {MAX_TEXT_CHARS} characters.")
        findings = extract_findings(request.text)
        return {**findings.to_dict(), "classes": class_summary(findings)}

    @app.post("/v1/uploads", dependencies=auth)
    async def upload(request: Request, kind: str = Query("volume"), suffix: str = Query(...)) -> Any:
        allowed = {"volume": VOLUME_SUFFIXES, "audio": AUDIO_SUFFIXES}.get(kind)
        if allowed is None:
            return _error(400, "kind must be 'volume' or 'audio'.", "InputError")
        suffix = suffix.lower()
        if suffix not in allowed:
            return _error(415, f"A {kind} is accepted as {', '.join(allowed)}, not {suffix!r}.", "InputError")
        limit = settings.max_upload_bytes if kind == "volume" else settings.max_audio_bytes
        too_large = UploadRejected(413, f"The {kind} is larger than this server accepts ({size_text(limit)}).")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large  # before a byte is stored
        upload_id, folder = manager().new_upload()
        path = folder / f"data{suffix}"
        written = 0
        try:
            with open(path, "wb") as handle:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > limit:
                        raise too_large
                    handle.write(chunk)
            if not written:
                raise UploadRejected(400, f"The {kind} upload is empty.")
            if kind == "volume":
                await run_in_threadpool(check_volume, path, suffix, settings.max_decompressed_bytes)
        except (UploadRejected, ClientDisconnect):
            manager().drop_upload(upload_id)
            raise
        return {"upload_id": upload_id, "bytes": written}

    def _submit(kind: str, spec: dict[str, Any], uploads: dict[str, str | None]) -> dict[str, Any]:
        wanted = {key: value for key, value in uploads.items() if value}
        try:
            job = manager().create(kind, spec, wanted, {"volume": VOLUME_SUFFIXES, "audio": AUDIO_SUFFIXES})
        except KeyError:
            raise HTTPException(status_code=404, detail="An upload named by this request is unknown: it was "
                                "used by another job already or expired; upload the file again.") from None
        except ValueError as error:
            raise UploadRejected(400, str(error)) from None
        return job.status(manager().position(job))

    @app.post("/v1/run", dependencies=auth)
    def run(request: RunRequest) -> dict[str, Any]:
        if (request.audio is None) == (request.text is None):
            return _error(400, "Give either audio (an upload id) or text, not both or neither.", "InputError")
        if request.text is not None and len(request.text) > MAX_TEXT_CHARS:
            raise UploadRejected(413, f"The text is longer than {MAX_TEXT_CHARS} characters.")
        spec = {"text": request.text, "options": request.options}
        return _submit("run", spec, {"volume": request.volume, "audio": request.audio})

    @app.post("/v1/segment", dependencies=auth)
    def segment(request: SegmentRequest) -> dict[str, Any]:
        if (request.box_lps is None) == (not request.classes):
            return _error(400, "Give either classes or box_lps (two LPS corners in mm).", "InputError")
        if request.box_lps is not None and (len(request.box_lps) != 2 or any(len(p) != 3 for p in request.box_lps)):
            return _error(400, "box_lps must be two corners [[x, y, z], [x, y, z]] in LPS mm.", "InputError")
        spec = {"classes": request.classes, "box_lps": request.box_lps, "label": request.label,
                "options": request.options}
        return _submit("segment", spec, {"volume": request.volume})

    @app.post("/v1/detect", dependencies=auth)
    def detect(request: DetectRequest) -> dict[str, Any]:
        """Start the slice search early (while the user reviews the findings); see engine._detect."""
        if (request.text is None) == (not request.classes):
            return _error(400, "Give either text or classes.", "InputError")
        if request.text is not None and len(request.text) > MAX_TEXT_CHARS:
            raise UploadRejected(413, f"The text is longer than {MAX_TEXT_CHARS} characters.")
        spec = {"text": request.text, "classes": request.classes, "options": request.options}
        return _submit("detect", spec, {"volume": request.volume})

    @app.post("/v1/transcribe", dependencies=auth)
    def transcribe(request: TranscribeRequest) -> dict[str, Any]:
        spec = {"language": request.language, "options": request.options}
        return _submit("transcribe", spec, {"audio": request.audio})

    def _job(job_id: str):
        job = manager().get(job_id)
        if job is None:
            raise HTTPException(status_code=404, detail=f"No job {job_id} on this server: its result was already "
                                "fetched, it expired, or the server restarted since it was submitted.")
        return job

    @app.get("/v1/jobs/{job_id}", dependencies=auth)
    def job_status(job_id: str) -> dict[str, Any]:
        job = _job(job_id)
        return job.status(manager().position(job))

    @app.post("/v1/jobs/{job_id}/cancel", dependencies=auth)
    def cancel(job_id: str) -> dict[str, Any]:
        job = _job(job_id)
        if job.state not in FINISHED:
            manager().cancel(job)
        return job.status(manager().position(job))

    @app.get("/v1/jobs/{job_id}/result", dependencies=auth)
    def result(job_id: str, formats: Annotated[list[str] | None, Query()] = None) -> Any:
        jobs = manager()
        job = _job(job_id)
        if job.state != DONE:
            detail = job.error or f"The job is {job.state}; wait until it is done."
            return _error(409, detail, job.error_type or "ServerError")
        result = job.result
        if result is None:  # removed by a fetch that just finished
            return _error(404, "This result was already fetched.", "ServerError")
        bundle = write_bundle(result, formats or [], private_folder(job.folder, "fetch-"))
        # The result is fetched once: the job and its folder go once the response is sent.
        return FileResponse(bundle, media_type="application/zip", background=BackgroundTask(jobs.remove, job))

    return app
