"""The batch's workers as Ray actors: ``logsam batch --ray [ADDRESS]``.

Each actor is a long-lived process holding a :class:`~.case.CaseRunner` (models loaded once), on
one GPU (``gpus_per_worker``) or CPU cores. Cases are handed out one at a time to idle actors;
a case whose actor dies (a killed process, a lost node) comes back as ``WorkerLost`` and the
driver retries it on a fresh actor. Actors read the volumes where they are and write the outputs
themselves, so the input and output folders must be the same paths on every node (shared storage).
Ray is imported only here, and only when ``--ray`` is given.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import LoGSAMError
from .case import BatchSettings, CaseRunner
from .manifest import Case
from .runner import WorkerLost


class CaseActor:
    """The actor's class (made remote in :class:`RayPool`; plain here so this module imports without Ray)."""

    def __init__(self, settings: BatchSettings, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.runner = CaseRunner(settings, in_worker=True)
        self.load_seconds = self.runner.load_models()

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "load_s": self.load_seconds}

    def run(self, case: Case, attempt: int) -> dict[str, Any]:
        return self.runner.run(case, attempt)


def import_ray():
    try:
        import ray
    except ImportError:
        raise LoGSAMError("--ray needs Ray: pip install 'logsam[ray]' (or pip install 'ray[serve]').") from None
    return ray


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to) or start a local
    instance; returns True when this call started Ray (so the caller shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    import signal

    # ray.init installs its own SIGINT/SIGTERM handlers (SIGTERM aborts the process): keep the caller's,
    # so that Ctrl-C and SIGTERM still end a batch or a server cleanly (summary written, app deleted).
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _init(ray, address, num_cpus)
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                with contextlib.suppress(ValueError):  # not the main thread: nothing was changed there
                    signal.signal(sig, handler)


def _init(ray, address: str | None, num_cpus: int | None) -> bool:
    package_root = str(Path(__file__).resolve().parents[2])  # so local workers import this LoGSAMLib
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env})
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise LoGSAMError(f"Cannot start or reach {where}: {str(error).strip().splitlines()[0]}") from None
    return True


class RayPool:
    """``workers`` actors, each with ``gpus_per_worker`` GPUs (0: CPU workers with ``cpus_per_worker`` cores)."""

    def __init__(self, settings: BatchSettings, workers: int, address: str | None = None,
                 gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0) -> None:
        ray = import_ray()
        self._ray = ray
        self._owns_ray = connect(address)
        # The driver's LOGSAM_* settings (model cache, test hooks) reach the actors.
        env = {k: v for k, v in os.environ.items() if k.startswith("LOGSAM_")}
        threads = max(1, int(cpus_per_worker)) if not gpus_per_worker else None
        self._actor_class = ray.remote(CaseActor).options(
            num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0, max_concurrency=1,
            runtime_env={"env_vars": env} if env else None)
        self._new_actor = lambda: self._actor_class.remote(settings, threads)
        self.size = workers
        self._idle = [self._new_actor() for _ in range(workers)]
        self._running: dict[Any, tuple[Any, Case]] = {}
        try:
            self.actor_info = ray.get([a.ready.remote() for a in self._idle])  # wait for the models
        except ray.exceptions.RayActorError as error:  # e.g. a model missing on a node: say which, once
            self.close()
            cause = getattr(error, "cause", None) or error
            if isinstance(cause, LoGSAMError):
                raise LoGSAMError(f"A Ray worker could not load its models: {cause}") from None
            raise LoGSAMError(f"A Ray worker could not start: {str(cause).strip().splitlines()[-1]}") from None

    def submit(self, case: Case, attempt: int) -> None:
        actor = self._idle.pop()
        self._running[actor.run.remote(case, attempt)] = (actor, case)

    def next_result(self) -> tuple[Case, dict[str, Any] | WorkerLost]:
        ray = self._ray
        done, _ = ray.wait(list(self._running), num_returns=1)
        actor, case = self._running.pop(done[0])
        try:
            row = ray.get(done[0])
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
            self._idle.append(self._new_actor())  # a fresh worker takes the dead one's place
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return case, WorkerLost(first[:200])
        self._idle.append(actor)
        return case, row

    def close(self) -> None:
        ray = self._ray
        for actor in [*self._idle, *(a for a, _ in self._running.values())]:
            ray.kill(actor)
        self._running.clear()
        self._idle.clear()
        if self._owns_ray:
            ray.shutdown()
