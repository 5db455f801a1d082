"""The job queue: workers, stage and progress, cancel, and per-job 0700 folders that never outlive their use.

A job's folder holds its uploads and its results. It is deleted when the result has been fetched,
when the job (finished or not fetched) is older than the TTL, and when the server shuts down.
Each worker thread has its own ``worker_state`` (its warm models), made once by ``make_state``.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import pid_alive
from ..errors import Cancelled, LoGSAMError
from ..progress import CancelToken

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
SERVER_PREFIX = "logsam-serve-"


def private_folder(parent: Path, prefix: str) -> Path:
    """A new folder only this user can enter (0700, whatever the umask)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o700)
    return folder


def server_folder(parent: Path) -> Path:
    """This server's 0700 folder under ``parent``, named with its process id; folders left there by servers
    that were killed (no clean stop) are deleted first, so uploads never outlive a crash for long."""
    for folder in parent.glob(f"{SERVER_PREFIX}*"):
        pid, sep, _ = folder.name[len(SERVER_PREFIX):].partition("-")  # "<pid>-<random>"
        mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        if sep and pid.isdigit() and mine and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return private_folder(parent, f"{SERVER_PREFIX}{os.getpid()}-")


@dataclass
class Job:
    id: str
    kind: str  # "run" | "segment" | "transcribe"
    spec: dict[str, Any]  # the request, with upload ids replaced by paths in ``folder``
    folder: Path
    created: float = field(default_factory=time.monotonic)
    state: str = QUEUED
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    error: str | None = None
    error_type: str | None = None
    finished: float | None = None
    result: Any = None  # engine.JobResult once done
    cancel_token: CancelToken = field(default_factory=CancelToken)

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        self.stage, self.fraction, self.message = stage, max(0.0, min(1.0, float(fraction))), message
        self.cancel_token.check()  # a cancel is noticed at the next progress report too

    def status(self, position: int | None = None) -> dict[str, Any]:
        out = {"job_id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage,
               "fraction": round(self.fraction, 4), "message": self.message, "error": self.error,
               "error_type": self.error_type}
        if position is not None:
            out["queue_position"] = position
        if self.result is not None:  # what a fetch will get: the exit code `logsam run` would give
            out["exit_code"] = getattr(self.result, "exit_code", 0)
            out["segmented"] = getattr(self.result, "segmentation", None) is not None
        return out


class JobManager:
    """Runs ``execute(job, worker_state)`` for queued jobs on ``concurrency`` worker threads."""

    def __init__(self, root: Path, execute: Callable[[Job, Any], Any], make_state: Callable[[], Any],
                 concurrency: int = 1, ttl_s: float = 3600.0, sweep_interval_s: float = 30.0) -> None:
        self.root = root
        self._execute = execute
        self._make_state = make_state
        self._ttl = ttl_s
        self._jobs: dict[str, Job] = {}
        self._uploads: dict[str, tuple[Path, float]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._stopping = threading.Event()
        self.worker_states: list[Any] = []
        self._threads = [threading.Thread(target=self._work, name=f"logsam-worker-{n}", daemon=True)
                         for n in range(max(1, concurrency))]
        self._threads.append(threading.Thread(target=self._sweep_loop, args=(sweep_interval_s,),
                                              name="logsam-sweeper", daemon=True))
        for thread in self._threads:
            thread.start()

    # ---------------------------------------------------------------- uploads

    def new_upload(self) -> tuple[str, Path]:
        upload_id = uuid.uuid4().hex
        folder = private_folder(self.root, "upload-")
        with self._lock:
            self._uploads[upload_id] = (folder, time.monotonic())
        return upload_id, folder

    def drop_upload(self, upload_id: str) -> None:
        with self._lock:
            entry = self._uploads.pop(upload_id, None)
        if entry is not None:
            shutil.rmtree(entry[0], ignore_errors=True)

    def take_upload(self, upload_id: str, into: Path) -> Path:
        """Move an upload's file into a job folder (an upload is used by one job only)."""
        with self._lock:
            entry = self._uploads.pop(upload_id, None)
        if entry is None:
            raise KeyError(upload_id)
        source = next(entry[0].iterdir())
        target = into / f"{upload_id}{''.join(source.suffixes)}"
        os.replace(source, target)
        shutil.rmtree(entry[0], ignore_errors=True)
        return target

    # ---------------------------------------------------------------- jobs

    def create(self, kind: str, spec: dict[str, Any], uploads: dict[str, str],
               suffixes: dict[str, tuple[str, ...]] | None = None) -> Job:
        """A job whose ``spec[key]`` is the path of upload ``uploads[key]``; queued at once.

        Raises KeyError for an unknown upload, ValueError when an upload's suffix is not in ``suffixes[key]``.
        """
        job = Job(uuid.uuid4().hex, kind, dict(spec), private_folder(self.root, "job-"))
        try:
            for key, upload_id in uploads.items():
                path = job.spec[key] = self.take_upload(upload_id, job.folder)
                allowed = (suffixes or {}).get(key)
                if allowed and not path.name.endswith(allowed):
                    raise ValueError(f"The upload given as {key} is not one ({', '.join(allowed)}).")
        except BaseException:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """How many queued jobs are ahead of this one (None once it runs)."""
        if job.state != QUEUED:
            return None
        with self._lock:
            waiting = [j for j in self._jobs.values() if j.state == QUEUED]
        return sum(1 for j in waiting if j.created < job.created)

    def cancel(self, job: Job) -> None:
        job.cancel_token.cancel()
        with self._lock:
            if job.state == QUEUED:  # never started: cancelled now; a worker will skip it
                self._finish(job, CANCELLED, "Cancelled by the user; no output was written.", "Cancelled")

    def remove(self, job: Job) -> None:
        """Forget a job and delete its folder (after its result was fetched)."""
        with self._lock:
            self._jobs.pop(job.id, None)
        job.result = None
        shutil.rmtree(job.folder, ignore_errors=True)

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {s: states.count(s) for s in (QUEUED, RUNNING)}

    def shutdown(self, wait_s: float = 5.0) -> None:
        """Cancel everything, give running jobs a moment to stop, delete every job and upload folder."""
        self._stopping.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.cancel(job)
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            folders = [j.folder for j in self._jobs.values()] + [f for f, _ in self._uploads.values()]
            self._jobs.clear()
            self._uploads.clear()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    # ---------------------------------------------------------------- internals

    def _finish(self, job: Job, state: str, error: str | None = None, error_type: str | None = None) -> None:
        job.state, job.error, job.error_type = state, error, error_type
        job.finished = time.monotonic()
        if state != DONE:  # nothing to fetch: the uploads go now, the status stays until the TTL
            shutil.rmtree(job.folder, ignore_errors=True)

    def _work(self) -> None:
        state = None
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state != QUEUED:
                    continue
                job.state = RUNNING
            try:
                if state is None:
                    state = self._make_state()
                    self.worker_states.append(state)
                job.cancel_token.check()
                result = self._execute(job, state)
            except Cancelled as error:
                self._finish(job, CANCELLED, str(error), "Cancelled")
            except LoGSAMError as error:
                self._finish(job, FAILED, str(error), type(error).__name__)
            except Exception as error:  # a bug or a model crash: the server keeps serving
                log.exception("job %s failed", job.id)
                self._finish(job, FAILED, f"The engine failed ({type(error).__name__}); see the server log.",
                             "ServerError")
            else:
                job.result = result
                self._finish(job, DONE)

    def _sweep_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            self.sweep()

    def sweep(self) -> None:
        """Delete finished jobs (fetched or not) and unused uploads older than the TTL."""
        now = time.monotonic()
        with self._lock:
            expired = [j for j in self._jobs.values()
                       if (j.finished is not None and now - j.finished > self._ttl)]
            stale = [(k, f) for k, (f, t) in self._uploads.items() if now - t > self._ttl]
            for job in expired:
                self._jobs.pop(job.id, None)
            for key, _ in stale:
                self._uploads.pop(key, None)
        for job in expired:
            job.result = None
            shutil.rmtree(job.folder, ignore_errors=True)
        for _, folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        if expired or stale:
            log.info("deleted %d expired job(s) and %d unused upload(s)", len(expired), len(stale))
