"""One progress callback and one cancel flag for every long job.

``progress(stage, fraction, message)``: stage is a short name ("asr", "detect",
"segment", ...), fraction in [0, 1] within that stage. The CLI turns it into a tqdm
bar, the Slicer module into its progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled

ProgressCallback = Callable[[str, float, str], None]


def no_progress(stage: str, fraction: float, message: str = "") -> None:
    """Default callback: ignore progress."""


class CancelToken:
    """A thread-safe cancel flag; long loops call :meth:`check` between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("Cancelled by the user; no output was written.")
