"""The engine behind HTTP: ``logsam serve`` (server) and :mod:`.client` (a torch-free client).

- ``app.py``: ``create_app(settings) -> FastAPI``, the versioned routes (``/v1/...``); ``app.state.service``
  (:class:`~.app.EngineService`) holds the job queue: started by the lifespan (or on first use), ``stop()``.
- ``settings.py``: :class:`ServeSettings`, everything a server is started with.
- ``jobs.py``: the job queue (workers, stage and progress, cancel, per-job 0700 folders, TTL).
- ``engine.py``: what a job runs (the same :class:`~LoGSAMLib.pipeline.Pipeline` as the CLI), models kept warm.
- ``auth.py``: the bearer token (generated once, stored 0600). ``limits.py``: upload and decompressed sizes.
- ``client.py``: :class:`EngineClient`, standard library only; all a remote user (or Slicer) needs.

Only this file and ``client.py`` are imported by a client; nothing here imports FastAPI at module scope
except ``app.py``.
"""

from __future__ import annotations

# Bumped when a route, a request or a response changes incompatibly. Client and server compare
# it on connect; the older side is told to upgrade.
API_VERSION = 1
API_HEADER = "X-LoGSAM-API"
VERSION_HEADER = "X-LoGSAM-Version"
