"""The Slicer module's engine-process manager (LoGSAMLib/service/local_engine.py) with a real
`logsam serve` subprocess: start, health, token and folder permissions, restart after a kill,
give-up after repeated deaths, a start-up failure with its log, and stop (SIGTERM, no kill)."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from LoGSAMLib.errors import ServerError
from LoGSAMLib.service.client import EngineClient
from LoGSAMLib.service.local_engine import FAILED, READY, STARTING, STOPPED, EngineStartError, LocalEngine

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and permission bits as on POSIX")


def _engine(statuses: list, **kwargs) -> LocalEngine:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return LocalEngine(sys.executable, python_path=[str(ROOT)], env=env, start_timeout=60.0,
                       on_status=lambda state, message: statuses.append((state, message)), **kwargs)


def _wait_for(engine: LocalEngine, state: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.poll() != state:
        assert time.monotonic() < deadline, f"engine is {engine.state}, not {state}: {engine.message}"
        time.sleep(0.05)


def test_start_health_restart_and_stop(tiny_home):
    statuses: list = []
    engine = _engine(statuses)
    try:
        engine.start()
        assert engine.state == STARTING and statuses[0][0] == STARTING  # start() returned before it listens
        address = engine.wait_ready()
        assert engine.state == READY and address.url.startswith("http://127.0.0.1:")
        assert int(address.url.rsplit(":", 1)[1]) > 0 and address.api_version
        assert statuses[-1][0] == READY and "ready" in statuses[-1][1]
        # A fresh token in a private folder: 0700 folder, 0600 file.
        folder = engine.log_path.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "token").stat().st_mode) == 0o600
        assert len(address.token) >= 32
        client = EngineClient(address.url, address.token, timeout=10)
        assert client.health()["status"] == "ok"
        assert client.extract("No glioma. Meningioma in the left frontal convexity.")["affirmed"] == ["meningioma"]
        with pytest.raises(ServerError, match="401"):
            EngineClient(address.url, "not-the-token-" + "x" * 20, timeout=10).health()

        # Killed: the next polls restart it, with another port and token.
        first_pid = engine.pid
        os.kill(first_pid, signal.SIGKILL)
        _wait_for(engine, STARTING)
        assert any("restarting" in message for state, message in statuses if state == STARTING)
        _wait_for(engine, READY)
        assert engine.pid != first_pid and engine.address.token != address.token
        assert EngineClient(engine.address.url, engine.address.token, timeout=10).health()["status"] == "ok"
        with pytest.raises(ServerError, match="401"):
            EngineClient(engine.address.url, address.token, timeout=10).health()  # the old token is void

        # Stop: SIGTERM ends it (uvicorn shuts down, then re-raises the signal), no kill needed.
        process = engine._process
        folder = engine.log_path.parent
        started = time.monotonic()
        engine.stop()
        assert process.returncode in (0, -signal.SIGTERM), process.returncode
        assert time.monotonic() - started < engine.stop_timeout
        assert engine.state == STOPPED and engine.address is None and not folder.exists()
    finally:
        engine.stop()


def test_gives_up_after_repeated_deaths(tiny_home):
    statuses: list = []
    engine = _engine(statuses, max_restarts=1)
    try:
        engine.wait_ready()
        os.kill(engine.pid, signal.SIGKILL)
        _wait_for(engine, STARTING)
        _wait_for(engine, READY)
        os.kill(engine.pid, signal.SIGKILL)
        _wait_for(engine, FAILED)
        assert "not restarting" in engine.message and engine.pid is None
        assert engine.ensure_running() == STARTING and engine.pid  # the user asks again: a fresh start
    finally:
        engine.stop()


def test_a_failed_start_says_why_and_does_not_loop(tiny_home):
    statuses: list = []
    engine = _engine(statuses, serve_args=["--precision", "fp8"])  # rejected by argparse
    try:
        engine.start()
        _wait_for(engine, FAILED, timeout=30)
        assert "exited during start-up" in engine.message and "fp8" in engine.message  # the log's tail
        assert not any("estart" in message for _, message in statuses)  # no restart loop
        with pytest.raises(EngineStartError):
            engine.wait_ready(timeout=1)
    finally:
        engine.stop()


def test_a_missing_interpreter_fails_at_once(tmp_path):
    engine = LocalEngine(str(tmp_path / "no-such-python"))
    engine.start()
    assert engine.state == FAILED and "could not be started" in engine.message


def test_the_engine_ends_when_its_parent_dies(tiny_home, tmp_path):
    """A parent that dies without stop(): the engine exits by itself (on Linux the kernel's
    parent-death signal, elsewhere `serve --parent-pid`)."""
    import json
    import subprocess

    script = (
        "import json, sys, time\n"
        "from LoGSAMLib.service.local_engine import LocalEngine\n"
        "engine = LocalEngine(sys.executable, python_path=[sys.argv[1]])\n"
        "address = engine.wait_ready(60)\n"
        "print(json.dumps({'pid': address.pid}), flush=True)\n"
        "import os; os._exit(0)  # no stop(), no atexit: as if Slicer crashed\n")
    parent = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=90,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
    pid = json.loads(parent.stdout.strip().splitlines()[-1])["pid"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            status = Path(f"/proc/{pid}/status")
            if status.is_file() and "\nState:\tZ" in status.read_text():
                return  # exited; only its process-table entry waits for a reaper
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the engine outlived its parent")
