"""``logsam serve --ray``: the same HTTP API on Ray Serve, with N warm engine replicas behind one address.

Two deployments:

- ``LoGSAMFront`` (one replica, no GPU): the very app of ``logsam serve`` (``create_app``: token,
  upload limits, version check, job queue, TTL folders). Uploads and job states live here, so every
  request about a job reaches the replica that knows it. Its job workers do not run models: each
  hands the job to the engine deployment and waits for it (``settings.concurrency`` = replicas).
- ``LoGSAMEngine`` (``replicas`` replicas, ``gpus_per_replica`` GPUs each): warm models
  (``engine.WorkerModels``) running ``engine.execute``, the function the single-process server runs,
  so a job gives the same result on either. The job's files travel as bytes (replicas may sit on
  other machines of the cluster); one job at a time per replica, Serve queues the rest.

Ray is imported only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import Cancelled, LoGSAMError
from .settings import ServeSettings

APP_NAME = "logsam"
_FILE_KEYS = ("volume", "audio")


class EngineReplica:
    """One warm copy of the models (the deployment's class; made a deployment in :func:`build`)."""

    def __init__(self, device: str | None, precision: str | None, warm: bool = True) -> None:
        from .engine import WorkerModels

        self.device, self.precision = device, precision
        self.models = WorkerModels()
        if warm:  # load the default models now, so the first request finds them warm
            from ..pipeline import PipelineOptions

            with contextlib.suppress(LoGSAMError):  # a missing model is reported by the job that needs it
                pipe = self.models.pipeline(PipelineOptions(device=device, precision=precision))
                pipe.detector  # noqa: B018 - loading is the point
                pipe.segmenter  # noqa: B018

    def execute(self, kind: str, spec: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
        from .engine import execute
        from .jobs import Job

        with tempfile.TemporaryDirectory(prefix="logsam-replica-") as folder:
            spec = dict(spec)
            for key, (suffix, data) in files.items():
                path = Path(folder) / f"{key}{suffix}"
                path.write_bytes(data)
                spec[key] = path
            job = Job(f"replica-{os.getpid()}", kind, spec, Path(folder))
            return execute(job, self.models, self.device, self.precision)

    def pid(self) -> int:
        return os.getpid()


class _Replicas:
    """The front's job-worker state: the engine deployment's handle (nothing loaded in the front)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def loaded(self) -> list[str]:
        return []


def _run_on_replica(job: Any, replicas: _Replicas) -> Any:
    """Send one job to a replica and wait; a cancel of the job cancels the request."""
    files, spec = {}, dict(job.spec)
    for key in _FILE_KEYS:
        if isinstance(spec.get(key), Path):
            path = spec.pop(key)
            files[key] = ("".join(path.suffixes), path.read_bytes())
    job.progress("engine", 0.0, "running on an engine replica")
    response = replicas.handle.execute.remote(job.kind, spec, files)
    while True:
        try:
            result = response.result(timeout_s=0.5)
            break
        except TimeoutError:
            if job.cancel_token.cancelled:
                response.cancel()
                raise Cancelled("Cancelled by the user; no output was written.") from None
        except Exception as error:  # a replica's LoGSAMError arrives wrapped: give the job its own error
            cause = getattr(error, "cause", None)
            if isinstance(cause, LoGSAMError):
                raise cause from None
            raise
    job.progress("engine", 1.0, "done")
    return result


class FrontReplica:
    """The ingress: ``create_app`` with its jobs run by the engine replicas."""

    def __init__(self, settings: ServeSettings, engine: Any) -> None:
        self.settings, self.engine = settings, engine

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app

        return create_app(self.settings, execute_job=_run_on_replica, make_state=lambda: _Replicas(self.engine))


def build(settings: ServeSettings, replicas: int, gpus_per_replica: float = 0.0, cpus_per_replica: float = 1.0):
    """The Serve application (front + engine), ready for ``serve.run``."""
    from dataclasses import replace

    from ray import serve

    engine = serve.deployment(
        EngineReplica, name="LoGSAMEngine", num_replicas=replicas, max_ongoing_requests=1,
        ray_actor_options={"num_gpus": gpus_per_replica, "num_cpus": cpus_per_replica},
    ).bind(settings.device, settings.precision)
    front_settings = replace(settings, concurrency=replicas)  # one job in flight per replica
    front = serve.deployment(serve.ingress()(FrontReplica), name="LoGSAMFront", num_replicas=1,
                             ray_actor_options={"num_cpus": 0})
    return front.bind(front_settings, engine)


def deploy(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8470, replicas: int = 1,
           gpus_per_replica: float = 0.0, cpus_per_replica: float = 1.0, address: str | None = None) -> str:
    """Start (or join) Ray, start Serve's HTTP proxy on ``host:port`` and deploy; returns the URL once
    every replica is up."""
    from ..batch.ray_pool import connect

    connect(address)
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    serve.run(build(settings, replicas, gpus_per_replica, cpus_per_replica), name=APP_NAME, route_prefix="/")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def undeploy(shutdown_ray: bool = True) -> None:
    import ray
    from ray import serve

    with contextlib.suppress(Exception):
        serve.delete(APP_NAME)
        serve.shutdown()
    if shutdown_ray:
        ray.shutdown()


def serve_forever(settings: ServeSettings, args: Any) -> int:
    """The ``--ray`` branch of ``logsam serve``: deploy, write the ready file, wait for Ctrl-C/SIGTERM."""
    import sys

    from .. import __version__
    from ..atomic import write_text_atomic
    from . import API_VERSION

    if args.certfile or args.keyfile:
        raise LoGSAMError("--ray serves plain http from Ray Serve's proxy: put a TLS proxy in front of it, "
                          "or serve without --ray for --certfile/--keyfile.")
    if args.port == 0:
        raise LoGSAMError("--ray needs a fixed --port (Ray Serve's proxy binds it on every node).")
    url = deploy(settings, args.host, args.port, args.replicas, args.gpus_per_replica, args.cpus_per_replica,
                 args.ray or None)
    if args.ready_file is not None:
        write_text_atomic(args.ready_file, json.dumps({"url": url, "port": args.port, "pid": os.getpid(),
                                                       "api_version": API_VERSION, "version": __version__,
                                                       "replicas": args.replicas}))
    print(f"logsam serve: {args.replicas} replica(s) on Ray Serve at {url} (API {API_VERSION}); stop with Ctrl+C.",
          file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        undeploy()
        if args.ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                args.ready_file.unlink()
    return 0
