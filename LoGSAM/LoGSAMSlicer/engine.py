"""The module's side of the engine: where it runs (a local process or a remote server), and the
jobs the panel sends there, advanced from the main thread's QTimer.

No slicer, qt or model code is imported here at module scope, so this file is tested with a real
engine process outside Slicer (Testing/test_slicer_engine_glue.py).

- :class:`EngineConnection`: *local* mode starts ``logsam serve`` with Slicer's ``PythonSlicer``
  through :class:`~LoGSAMLib.service.local_engine.LocalEngine` (loopback, fresh token, restarted if
  it dies); *remote* mode talks to a server URL with the token the user gave.
- :class:`EngineJob`: a queued job on the engine, polled with ``poll()`` from a timer; the blocking
  parts (upload, download) run inside a click or a tick, and their progress callback keeps Slicer's
  events flowing (``pump``), so the panel stays responsive and Cancel works.
- :func:`saveToken` / :func:`loadToken`: the remote server's token, kept in a file only its owner
  can read (0600), never in Slicer's settings file or the scene.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

LOCAL, REMOTE = "local", "remote"
READY, STARTING, FAILED, STOPPED = "ready", "starting", "failed", "stopped"
POLL_SECONDS = {LOCAL: 0.2, REMOTE: 0.5}  # how often a running job's status is asked for
# The panel's settings that are the server's choice in remote mode (never sent with a job).
SERVER_SIDE_OPTIONS = ("device", "precision")

StatusCallback = Callable[[str, str], None]
Progress = Callable[[str, float, str], None]


# ---------------------------------------------------------------------- the token file


def saveToken(path: str, token: str) -> None:
    """Write the token to ``path`` readable by its owner only (0600); an empty token removes it."""
    if not token:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token.strip())
    os.replace(temporary, path)


def loadToken(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except OSError:
        return ""


def pythonSlicer() -> str:
    """The interpreter that runs the local engine: Slicer's ``PythonSlicer`` (same packages as
    Slicer, but its own process), else this interpreter (outside Slicer: tests, scripts)."""
    found = shutil.which("PythonSlicer")
    if found:
        return found
    for folder in (os.path.dirname(sys.executable), os.path.join(os.path.dirname(sys.executable), "..", "bin")):
        for name in ("PythonSlicer", "PythonSlicer.exe"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return os.path.normpath(candidate)
    return sys.executable


# ---------------------------------------------------------------------- where the engine runs


class EngineConnection:
    """The engine the panel talks to; ``onStatus(state, message)`` feeds the status line."""

    def __init__(self, engineFolder: str, onStatus: StatusCallback | None = None, python: str | None = None,
                 serveArgs: list | None = None) -> None:
        self.engineFolder = engineFolder
        self.onStatus = onStatus
        self.python = python
        self.serveArgs = list(serveArgs or [])
        self.mode = LOCAL
        self.url = ""
        self.token = ""
        self._local = None  # LoGSAMLib.service.local_engine.LocalEngine
        self._client = None
        self._remoteState = STOPPED
        self._remoteMessage = ""

    # configuration --------------------------------------------------------
    def useLocal(self, serveArgs: list | None = None) -> None:
        """Local mode; different ``serveArgs`` (e.g. another device) restart a running engine."""
        serveArgs = list(serveArgs if serveArgs is not None else self.serveArgs)
        changed = self.mode != LOCAL or serveArgs != self.serveArgs
        self.mode, self.serveArgs = LOCAL, serveArgs
        if changed and self._local is not None:
            self._local.stop()
            self._local = None
        self._client = None

    def useRemote(self, url: str, token: str) -> None:
        if self._local is not None:
            self._local.stop()
            self._local = None
        self.mode, self.url, self.token = REMOTE, url.strip().rstrip("/"), token.strip()
        self._client = None
        self._remoteState, self._remoteMessage = STOPPED, ""

    # state ----------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.mode == REMOTE:
            return self._remoteState
        return self._local.state if self._local is not None else STOPPED

    @property
    def message(self) -> str:
        if self.mode == REMOTE:
            return self._remoteMessage
        return self._local.message if self._local is not None else ""

    def start(self) -> str:
        """Local: start the engine process (returns at once). Remote: check the server (one short
        request): its version, the token, and that it answers."""
        if self.mode == REMOTE:
            return self.connectRemote()
        if self._local is None:
            from LoGSAMLib.service.local_engine import LocalEngine

            self._local = LocalEngine(self.python or pythonSlicer(), python_path=[self.engineFolder],
                                      serve_args=self.serveArgs, on_status=self._status)
        self._local.ensure_running()
        return self._local.state

    def poll(self) -> str:
        """Cheap; called by the panel's timer. A dead local engine is restarted here."""
        if self.mode == LOCAL and self._local is not None:
            return self._local.poll()
        return self.state

    def connectRemote(self, timeout: float = 10.0) -> str:
        from LoGSAMLib.errors import LoGSAMError
        from LoGSAMLib.service.client import EngineClient

        if not self.url:
            self._setRemote(FAILED, "Enter the server's URL under Advanced > Engine.")
            return self._remoteState
        try:
            client = EngineClient(self.url, self.token, timeout=timeout)
            info = client.health()
        except LoGSAMError as error:
            self._setRemote(FAILED, str(error))
            return self._remoteState
        self._client = EngineClient(self.url, self.token, timeout=60.0)
        device = info.get("device", "?")
        self._setRemote(READY, f"Connected to {self.url} (LoGSAM {info.get('version', '?')}, device {device}).")
        return self._remoteState

    def _setRemote(self, state: str, message: str) -> None:
        self._remoteState, self._remoteMessage = state, message
        self._status(state, message)

    def _status(self, state: str, message: str) -> None:
        if self.onStatus is not None:
            self.onStatus(state, message)

    def client(self):
        """The client of the ready engine; raises a clear error if it is not ready."""
        from LoGSAMLib.errors import ServerConnectionError
        from LoGSAMLib.service.client import EngineClient

        if self.poll() != READY:
            where = "The LoGSAM engine is still starting" if self.state == STARTING else \
                (self.message or "The LoGSAM engine is not running")
            raise ServerConnectionError(f"{where}. Try again when Advanced > Engine says it is ready.")
        if self.mode == LOCAL:
            address = self._local.address
            if self._client is None or (self._client.url, self._client.token) != (address.url, address.token):
                self._client = EngineClient(address.url, address.token, timeout=60.0)  # new after a restart
        return self._client

    def waitReady(self, timeout: float = 180.0, pump: Callable[[], None] | None = None) -> None:
        """Block until ready (scripts, self-tests); ``pump`` keeps Slicer's events flowing meanwhile."""
        from LoGSAMLib.errors import ServerConnectionError

        deadline = time.monotonic() + timeout
        if self.start() == READY:
            return
        while self.poll() not in (READY, FAILED):
            if time.monotonic() > deadline:
                raise ServerConnectionError(f"The LoGSAM engine was not ready within {timeout:.0f} s.")
            if pump is not None:
                pump()
            time.sleep(0.05)
        if self.state != READY:
            raise ServerConnectionError(self.message or "The LoGSAM engine did not start.")

    def jobOptions(self, options: dict) -> dict:
        """What a job sends as options: the device is the engine's choice (``logsam serve --device``)."""
        return {key: value for key, value in options.items() if key not in SERVER_SIDE_OPTIONS}

    def volumeSuffix(self) -> str:
        # Loopback: uncompressed is faster than compressing; over a network, gzip saves more than it costs.
        return ".nii" if self.mode == LOCAL else ".nii.gz"

    def stop(self) -> None:
        if self._local is not None:
            self._local.stop()
        self._client = None


# ---------------------------------------------------------------------- jobs


def connectionLostMessage(error: Exception) -> str:
    return (f"{error}\nThe scene was not changed. When the engine is ready again (Advanced > Engine), "
            "press the button again.")


class EngineJob:
    """A job on the engine: submitted by ``submit(client, progress) -> job id`` (uploads included),
    then polled until done, then fetched by ``fetch(client, job_id, folder, progress) -> result``
    (``fetch=None``: nothing to fetch; the result is the final status).

    ``poll()`` is called from the panel's timer and returns True once the job has ended; it calls
    ``onProgress(stage, fraction, message)`` and exactly once ``onDone(result)`` or
    ``onError(error, details)``. Nothing here touches the scene: ``onDone`` does, on the main thread.
    """

    def __init__(self, connection: EngineConnection, submit: Callable[[Any, Progress], str],
                 fetch: Callable[[Any, str, str, Progress], Any] | None, onProgress: Progress,
                 onDone: Callable[[Any], None], onError: Callable[[BaseException, str], None],
                 pump: Callable[[], None] | None = None, pollSeconds: float | None = None) -> None:
        self.connection = connection
        self._submit, self._fetch = submit, fetch
        self._onProgress, self._onDone, self._onError = onProgress, onDone, onError
        self._pump = pump or (lambda: None)
        self._pollSeconds = POLL_SECONDS[connection.mode] if pollSeconds is None else pollSeconds
        self.jobId: str | None = None
        self.finished = False
        self.cancelled = False
        self._lastPoll = 0.0
        self._lastShown = None
        self._client = None
        self._folder = tempfile.mkdtemp(prefix="logsam-slicer-")

    # the blocking steps keep Slicer's events flowing through this callback
    def _transferProgress(self, stage: str, fraction: float, message: str = "") -> None:
        from LoGSAMLib.errors import Cancelled

        self._onProgress(stage, fraction, message)
        self._pump()  # repaint, and let Cancel be pressed
        if self.cancelled:
            raise Cancelled("Cancelled; nothing was changed.")

    def start(self) -> EngineJob:
        """Upload and queue the job (returns when it is queued, with the panel kept live)."""
        try:
            self._client = self.connection.client()
            self.jobId = self._submit(self._client, self._transferProgress)
        except BaseException as error:  # noqa: BLE001 - every failure reaches the panel
            self._end(error)
        return self

    def cancel(self) -> None:
        """Ask the engine to stop the job; it ends through ``onError`` with ``Cancelled``."""
        self.cancelled = True
        if self.jobId is not None and not self.finished and self._client is not None:
            try:
                self._client.cancel(self.jobId)
            except Exception:  # noqa: BLE001 - the engine may be gone; the next poll says so
                pass

    def poll(self) -> bool:
        if self.finished:
            return True
        if self.jobId is None or time.monotonic() - self._lastPoll < self._pollSeconds:
            return False
        self._lastPoll = time.monotonic()
        from LoGSAMLib.errors import Cancelled, ServerConnectionError

        try:
            self.connection.poll()  # a dead local engine restarts; this job is lost with it
            status = self._client.status(self.jobId)
        except Exception as error:  # noqa: BLE001
            if not isinstance(error, ServerConnectionError) and "No job" not in str(error):
                self._end(error)
                return True
            where = "engine" if self.connection.mode == LOCAL else f"server at {self.connection.url}"
            self._end(ServerConnectionError(connectionLostMessage(
                f"The LoGSAM {where} stopped, restarted or cannot be reached while the job ran; the job is lost.")))
            return True
        state = status.get("state")
        shown = (state, status.get("stage"), status.get("fraction"), status.get("message"))
        if shown != self._lastShown:
            self._lastShown = shown
            if state == "queued":
                ahead = status.get("queue_position") or 0
                self._onProgress("queued", 0.0, f"{ahead} job(s) ahead" if ahead else "")
            elif status.get("stage"):
                self._onProgress(status["stage"], float(status.get("fraction") or 0.0), status.get("message") or "")
        if state == "done" and self.cancelled:  # too late to stop it, but the reader asked for nothing
            self._end(Cancelled("Cancelled; nothing was changed."))
        elif state == "done":
            if self._fetch is None:  # a job with nothing to fetch (the early search)
                self._end(None, status)
                return True
            try:
                result = self._fetch(self._client, self.jobId, self._folder, self._transferProgress)
            except BaseException as error:  # noqa: BLE001
                self._end(error)
                return True
            self._end(None, result)
        elif state == "cancelled":
            self._end(Cancelled(status.get("error") or "Cancelled; nothing was changed."))
        elif state == "failed":
            from LoGSAMLib.service.client import _error_class

            self._end(_error_class(status.get("error_type"))(status.get("error") or "The job failed in the engine."))
        return self.finished

    def wait(self, timeout: float = 3600.0) -> None:
        """Poll until the job ends (scripts and tests)."""
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"The engine job did not end within {timeout:.0f} s.")
            self._pump()
            time.sleep(0.02)

    def _end(self, error: BaseException | None, result: Any = None) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            if error is None:
                self._onDone(result)
            else:
                import traceback

                details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                self._onError(error, details)
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


# ---------------------------------------------------------------------- what the jobs send and fetch


def writeVolume(volume, folder: str, suffix: str) -> str:
    from LoGSAMLib.volume import write_volume

    return str(write_volume(volume, os.path.join(folder, "volume" + suffix)))


def segmentationResult(client, jobId: str, folder: str, progress: Progress):
    """Fetch a segment/run job: the label map (read back with its geometry) and the report."""
    import SimpleITK as sitk

    from LoGSAMLib.outputs import CLASS_LABELS
    from LoGSAMLib.types import Segmentation
    from LoGSAMLib.volume import from_sitk

    path = os.path.join(folder, "result.nii.gz")
    report = client.fetch(jobId, [path], None, progress=progress)
    labelmap = from_sitk(sitk.ReadImage(path))  # a label map: read_volume's "is this an MRI" check does not apply
    classes = {CLASS_LABELS[name]: name for name in report.get("classes") or [] if name in CLASS_LABELS}
    return SimpleNamespace(segmentation=Segmentation(labelmap, classes), report=report)


def submitWithVolume(volume, suffix: str, method: str, **arguments):
    """A ``submit`` for :class:`EngineJob`: the volume written to a temporary file, then
    ``client.<method>(path, **arguments)`` (``submit_segment``, ``submit_run``, ``submit_detect``)."""

    def submit(client, progress: Progress) -> str:
        folder = tempfile.mkdtemp(prefix="logsam-upload-")
        try:
            return getattr(client, method)(writeVolume(volume, folder, suffix), progress=progress, **arguments)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return submit


def submitSegment(volume, suffix: str, classes=None, box=None, label=None, options=None):
    """Segment classes (detector + segmenter) or everything inside a box (two LPS corners)."""
    return submitWithVolume(volume, suffix, "submit_segment", classes=list(classes) if classes else None,
                            box_lps=box, label=label, options=options)


def _asDictation(classes, findings: dict | None) -> bool:
    """True when the reader kept exactly the classes the findings affirm: then the engine is given the
    text, so that the dictated side and region apply (the segment endpoint takes classes only)."""
    return bool(findings and findings.get("text") and list(classes) == list(findings.get("affirmed") or []))


def submitForClasses(volume, suffix: str, classes, findings: dict | None, options=None):
    """Segment ``classes``: a run on the findings' text (as ``logsam run --text``) when they are its
    affirmed classes, else by classes alone (the reader changed them)."""
    if _asDictation(classes, findings):
        return submitWithVolume(volume, suffix, "submit_run", text=findings["text"], options=options)
    return submitSegment(volume, suffix, classes=list(classes), options=options)


def submitEarlySearch(volume, suffix: str, classes, findings: dict | None, options=None):
    """The engine's slice search alone, started while the reader checks the findings; the run or
    segment that ``submitForClasses`` sends next reuses its boxes when volume, prompt and options
    are the same (the engine's detection cache decides, keyed as in-process)."""
    if _asDictation(classes, findings):
        return submitWithVolume(volume, suffix, "submit_detect", text=findings["text"], options=options)
    return submitWithVolume(volume, suffix, "submit_detect", classes=list(classes), options=options)


def submitTranscription(audio, language=None, options=None):
    """A ``submit`` for a transcription: a recording (16 kHz samples) or an audio file path."""

    def submit(client, progress: Progress) -> str:
        folder = tempfile.mkdtemp(prefix="logsam-upload-")
        try:
            if isinstance(audio, str | os.PathLike):
                path = str(audio)
            else:
                from LoGSAMLib.audio import write_wav

                path = str(write_wav(os.path.join(folder, "dictation.wav"), audio))
            return client.submit_transcribe(path, language, options=options, progress=progress)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return submit


def transcriptionResult(client, jobId: str, folder: str, progress: Progress) -> dict:
    """Fetch a transcription job; then the findings of its English text (one short request)."""
    transcript = client.fetch(jobId, [], None, progress=progress)
    english = transcript.get("english") or transcript.get("translation") or transcript.get("text") or ""
    return {"transcript": transcript, "findings": client.extract(english)}
