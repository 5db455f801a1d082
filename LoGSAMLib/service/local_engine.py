"""Run the engine as a child process on this computer: the Slicer module's *Local* mode.

3D Slicer's main loop holds Python's GIL while it idles, so worker threads inside Slicer crawl,
and a crash in torch would take Slicer down. The engine therefore runs as its own process
(``logsam serve`` with Slicer's ``PythonSlicer``) on a loopback port, and the module talks to it
over HTTP like to any remote server.

:class:`LocalEngine` owns that process:

- :meth:`LocalEngine.start` spawns it and returns at once: a fresh random token (a 0600 file in
  a private 0700 folder), port 0 (the system picks a free one), a ready file the server writes
  once it listens;
- :meth:`LocalEngine.poll` is cheap and never blocks for long (a file check, ``Popen.poll`` and,
  once, a health request with a short timeout): the module calls it from a ``QTimer``. It reports
  start-up through ``on_status(state, message)``, and restarts the engine when it died
  (at most ``max_restarts`` times in ``restart_window`` seconds, then it gives up and says why);
- :meth:`LocalEngine.stop` sends SIGTERM, waits, then kills; it also runs at interpreter exit.
  If Slicer dies without stopping it, the engine ends by itself (``serve --parent-pid``; on Linux
  the kernel also sends it SIGTERM).

Standard library only (the module imports it in Slicer's own interpreter).
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LoGSAMError

STOPPED, STARTING, READY, FAILED = "stopped", "starting", "ready", "failed"

StatusCallback = Callable[[str, str], None]


class EngineStartError(LoGSAMError):
    """The local engine process did not start, or keeps dying."""


@dataclass(frozen=True)
class EngineAddress:
    """Where a started engine listens and how to reach it (the ready file plus the token)."""

    url: str
    token: str
    pid: int
    version: str = ""
    api_version: str = ""


def _default_health(url: str, token: str, timeout: float) -> dict[str, Any]:
    from .client import EngineClient

    return EngineClient(url, token, timeout=timeout).health()


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the kernel sends SIGTERM to the engine if Slicer dies without stopping it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; stop() and atexit still end the engine
        pass


class LocalEngine:
    """One engine process on 127.0.0.1 (see the module docstring).

    ``python`` is the interpreter that runs the engine (``PythonSlicer`` inside Slicer);
    ``python_path`` are folders put in front of ``PYTHONPATH`` so that it finds ``LoGSAMLib``;
    ``serve_args`` are extra ``logsam serve`` options (``--concurrency``...);
    ``health(url, token, timeout)`` checks a started engine (default: the service client).
    """

    def __init__(self, python: str, *, python_path: Sequence[str] = (), serve_args: Sequence[str] = (),
                 env: dict[str, str] | None = None, on_status: StatusCallback | None = None,
                 start_timeout: float = 180.0, health_timeout: float = 3.0, max_restarts: int = 3,
                 restart_window: float = 300.0, stop_timeout: float = 10.0,
                 health: Callable[[str, str, float], dict[str, Any]] | None = None) -> None:
        self.python = python
        self.python_path = list(python_path)
        self.serve_args = list(serve_args)
        self.env = dict(env) if env is not None else None
        self.on_status = on_status
        self.start_timeout = start_timeout
        self.health_timeout = health_timeout
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.stop_timeout = stop_timeout
        self._health = health or _default_health
        self._lock = threading.RLock()  # poll() from a timer, stop() from atexit
        self._process: subprocess.Popen | None = None
        self._folder: Path | None = None
        self._log = None
        self._started_at = 0.0
        self._restarts: list[float] = []
        self._address: EngineAddress | None = None
        self.state = STOPPED
        self.message = ""
        self.health_info: dict[str, Any] = {}
        atexit.register(self.stop)

    # ------------------------------------------------------------------ queries

    @property
    def address(self) -> EngineAddress | None:
        """The running engine's URL and token; None until it is ready."""
        return self._address if self.state == READY else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """The engine's stdout and stderr (the server logs no patient data)."""
        return self._folder / "engine.log" if self._folder is not None else None

    def log_tail(self, lines: int = 15) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return ""
        with open(path, encoding="utf-8", errors="replace") as file:
            return "".join(file.readlines()[-lines:]).strip()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Spawn the engine and return at once (no-op while it is starting or running)."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            self._spawn(restart=False)

    def _spawn(self, restart: bool) -> None:
        self._cleanup_files()
        folder = Path(tempfile.mkdtemp(prefix="logsam-engine-"))  # 0700
        token_file, ready_file = folder / "token", folder / "ready.json"
        descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(32))
        # --parent-pid: the engine also ends by itself if this process dies without stopping it.
        command = [self.python, "-m", "LoGSAMLib.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                   "--token-file", str(token_file), "--ready-file", str(ready_file),
                   "--parent-pid", str(os.getpid()), *self.serve_args]
        env = dict(os.environ if self.env is None else self.env)
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join([*self.python_path, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._folder = folder
        self._log = open(folder / "engine.log", "wb")  # noqa: SIM115 - closed in _cleanup_files
        options: dict[str, Any] = {}
        if sys.platform.startswith("linux"):
            options["preexec_fn"] = _set_parent_death_signal
        elif os.name == "nt":
            options["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                             stderr=subprocess.STDOUT, env=env, cwd=str(folder), **options)
        except OSError as error:
            self._set(FAILED, f"The LoGSAM engine could not be started with {self.python}: {error}")
            self._cleanup_files()
            return
        self._started_at = time.monotonic()
        self._address = None
        self.health_info = {}
        self._set(STARTING, "Restarting the LoGSAM engine…" if restart else "Starting the LoGSAM engine…")

    def poll(self) -> str:
        """Advance the state machine; returns the state. Cheap enough for a 100-500 ms timer."""
        with self._lock:
            if self._process is None:
                return self.state
            code = self._process.poll()
            if code is not None:
                return self._died(code)
            if self.state == STARTING:
                self._check_ready()
            return self.state

    def _check_ready(self) -> None:
        assert self._folder is not None
        ready_file = self._folder / "ready.json"
        if not ready_file.is_file():
            elapsed = time.monotonic() - self._started_at
            if elapsed > self.start_timeout:
                tail = self.log_tail()
                self._terminate()
                self._set(FAILED, f"The LoGSAM engine did not start within {self.start_timeout:.0f} s."
                          + (f"\n{tail}" if tail else ""))
            elif int(elapsed) % 5 == 0:
                self._set(STARTING, f"Starting the LoGSAM engine… ({elapsed:.0f} s)")
            return
        try:
            ready = json.loads(ready_file.read_text(encoding="utf-8"))
            token = (self._folder / "token").read_text(encoding="ascii").strip()
            address = EngineAddress(url=str(ready["url"]), token=token, pid=int(ready.get("pid", self.pid or 0)),
                                    version=str(ready.get("version", "")),
                                    api_version=str(ready.get("api_version", "")))
        except (OSError, ValueError, KeyError):
            return  # written but not complete yet: the next poll reads it again
        try:
            self.health_info = dict(self._health(address.url, address.token, self.health_timeout))
        except LoGSAMError as error:  # a version mismatch or a refused token: restarting will not help
            self._terminate()
            self._set(FAILED, f"The LoGSAM engine started but does not answer correctly: {error}")
            return
        except Exception:  # noqa: BLE001 - not listening yet: try again on the next poll
            return
        self._address = address
        self._set(READY, f"LoGSAM engine ready (version {address.version or '?'}, port "
                         f"{address.url.rsplit(':', 1)[-1].strip('/')}).")

    def _died(self, code: int) -> str:
        was = self.state
        tail = self.log_tail()
        self._process = None
        self._address = None
        if was in (STOPPED, FAILED):
            return self.state
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < self.restart_window]
        if was == STARTING and not self._restarts:
            # It never came up: restarting the same command would fail the same way.
            self._set(FAILED, f"The LoGSAM engine exited during start-up (code {code})."
                      + (f"\n{tail}" if tail else ""))
            return self.state
        if len(self._restarts) >= self.max_restarts:
            self._set(FAILED, f"The LoGSAM engine stopped {len(self._restarts) + 1} times within "
                              f"{self.restart_window / 60:.0f} min (last exit code {code}); not restarting."
                      + (f"\n{tail}" if tail else ""))
            return self.state
        self._restarts.append(now)
        self._set(STARTING, f"The LoGSAM engine stopped (exit code {code}); restarting…")
        self._spawn(restart=True)
        return self.state

    def ensure_running(self) -> str:
        """Start the engine if it is not running (also after it failed: the user asked again)."""
        with self._lock:
            if self.state == FAILED:
                self._restarts.clear()
            if self._process is None or self._process.poll() is not None:
                self._spawn(restart=False)
            return self.poll()

    def wait_ready(self, timeout: float | None = None, interval: float = 0.1) -> EngineAddress:
        """Block until the engine is ready (for scripts and tests; the module polls instead)."""
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        self.start()
        while True:
            state = self.poll()
            if state == READY and self._address is not None:
                return self._address
            if state in (FAILED, STOPPED):
                raise EngineStartError(self.message or "The LoGSAM engine is not running.")
            if time.monotonic() > deadline:
                raise EngineStartError(f"The LoGSAM engine was not ready within {timeout:.0f} s.")
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM, wait ``stop_timeout`` seconds, then kill; removes the token and ready files."""
        with self._lock:
            if self._process is not None:
                self._terminate()
            if self.state != STOPPED:
                self._set(STOPPED, "LoGSAM engine stopped.")
            self._cleanup_files()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        self._address = None
        if process is None or process.poll() is not None:
            return
        try:
            process.terminate()  # SIGTERM: the server finishes its shutdown (deletes job folders)
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)

    def _cleanup_files(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _set(self, state: str, message: str) -> None:
        changed = (state, message) != (self.state, self.message)
        self.state, self.message = state, message
        if changed and self.on_status is not None:
            try:
                self.on_status(state, message)
            except Exception:  # noqa: BLE001 - a display problem must not stop the engine's management
                pass
