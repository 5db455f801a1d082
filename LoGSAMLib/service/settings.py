"""The settings a server is started with (``logsam serve`` options, or a Ray Serve deployment's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass
class ServeSettings:
    token: str  # the bearer token every request but /version must carry
    work_dir: Path | None = None  # per-job folders live under it; None: a fresh 0700 temp folder
    concurrency: int = 1  # jobs run at once; each worker keeps its own warm copy of the models
    device: str | None = None  # the server's device for every job (a client cannot choose it)
    precision: str | None = None
    max_upload_bytes: int = 1024 * MB  # one volume upload
    max_audio_bytes: int = 100 * MB  # one audio upload
    max_decompressed_bytes: int = 2048 * MB  # a volume's pixel data once decompressed
    job_ttl_s: float = 3600.0  # a finished job (or unused upload) is deleted after this long
    sweep_interval_s: float = 30.0  # how often expired jobs are looked for

    def limits(self) -> dict[str, int]:
        return {"max_upload_bytes": self.max_upload_bytes, "max_audio_bytes": self.max_audio_bytes,
                "max_decompressed_bytes": self.max_decompressed_bytes}
