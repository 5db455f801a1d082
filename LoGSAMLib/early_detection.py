"""Detection that starts as soon as the prompt is known, while the radiologist reads.

The transcript and findings are always shown before anything is segmented, and reading
them takes seconds to tens of seconds. On a CPU the detector costs 5-7 s per slice, so the
slice search for the affirmed classes runs in a background thread during that review (or,
on a GPU, as soon as a live transcript names a class). Nothing from it is shown or written:
its results only fill a cache that :meth:`Pipeline.segment` reads once the user confirms.

A cached search is used only when its :class:`DetectionKey` matches, and the key names all
that the boxes depend on: the volume's voxels and geometry, the slice plane, the class and
its caption, and every detector setting. A corrected text, another class, another volume or
a changed threshold is therefore detected afresh, never served stale.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import Cancelled
from .progress import CancelToken, ProgressCallback, no_progress
from .search import SearchResult
from .types import Volume

# PipelineOptions fields that act after detection (or not at all on it); every other field,
# including any added later, is part of the key, so a new detector setting can only cause a miss.
NOT_DETECTION_OPTIONS = frozenset({
    "whisper_model", "asr_backend", "language", "segmenter", "location_prior", "min_track_slices", "batch_size",
    "box_prompts",
})
CACHE_ENTRIES = 16  # a few volumes x classes; each entry is a few hundred boxes


@dataclass(frozen=True)
class DetectionKey:
    volume: str  # volume_fingerprint()
    plane: str
    label: str
    caption: str
    settings: tuple[tuple[str, str], ...]  # the detection options, as sorted (name, repr) pairs


def volume_fingerprint(volume: Volume) -> str:
    """A digest of the voxels and the geometry (about 50 ms for a 256x256x155 float32 volume)."""
    digest = hashlib.blake2b(digest_size=16)
    array = volume.array
    digest.update(f"{array.dtype.str}{array.shape}{volume.spacing}{volume.origin}".encode())
    digest.update(volume.direction.astype("<f8").tobytes())
    digest.update(memoryview(array if array.flags.c_contiguous else array.copy(order="C")).cast("B"))
    return digest.hexdigest()


def detection_settings(options: object) -> tuple[tuple[str, str], ...]:
    fields = vars(options)
    return tuple(sorted((name, repr(value)) for name, value in fields.items() if name not in NOT_DETECTION_OPTIONS))


class DetectionCache:
    """Finished slice searches by key; thread-safe, least recently used entries go first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._results: OrderedDict[DetectionKey, SearchResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: DetectionKey) -> SearchResult | None:
        with self._lock:
            result = self._results.get(key)
            if result is not None:
                self._results.move_to_end(key)
            return result

    def put(self, key: DetectionKey, result: SearchResult) -> None:
        with self._lock:
            self._results[key] = result
            self._results.move_to_end(key)
            while len(self._results) > self._entries:
                self._results.popitem(last=False)

    def __contains__(self, key: DetectionKey) -> bool:
        with self._lock:
            return key in self._results

    def clear(self) -> None:
        with self._lock:
            self._results.clear()


SearchFn = Callable[[DetectionKey, ProgressCallback, CancelToken], SearchResult]


class _WantedToken(CancelToken):
    """Cancels the search of one key: when the whole early detection stops, or the key is no longer wanted."""

    def __init__(self, owner: EarlyDetection, key: DetectionKey) -> None:
        super().__init__()
        self._owner, self._key = owner, key

    @property
    def cancelled(self) -> bool:
        return self._owner.stopped or self._key not in self._owner.wanted

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled("Early detection stopped: its prompt or volume is no longer the one to segment.")


class EarlyDetection:
    """One background run of the slice searches for ``keys``, in order, into ``cache``.

    ``search(key, progress, cancel)`` does the work of one key; it is called in the worker
    thread. Keys already in the cache are skipped. ``keep_only`` drops keys that are no
    longer wanted (the search in progress stops at its next detector call).
    """

    def __init__(self, keys: Iterable[DetectionKey], search: SearchFn, cache: DetectionCache) -> None:
        self.keys: tuple[DetectionKey, ...] = tuple(dict.fromkeys(keys))
        self.wanted: frozenset[DetectionKey] = frozenset(self.keys)
        self._search: SearchFn | None = search
        self._cache = cache
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.errors: dict[DetectionKey, BaseException] = {}  # failed searches (segment runs them again)
        self.progress: tuple[float, str] = (0.0, "")  # overall fraction over self.keys, latest message

    def start(self) -> EarlyDetection:
        self._thread = threading.Thread(target=self._run, name="logsam-early-detection", daemon=True)
        self._thread.start()
        return self

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def covers(self, keys: Iterable[DetectionKey]) -> bool:
        """Whether this run searches (or has searched) any of ``keys``."""
        return not self.stopped and bool(self.wanted & set(keys))

    def keep_only(self, keys: Iterable[DetectionKey]) -> None:
        with self._lock:
            self.wanted = self.wanted & frozenset(keys)

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
             poll_s: float = 0.1) -> None:
        """Block until the run has ended, forwarding its progress; a user cancel stops it too."""
        while not self._done.wait(poll_s):
            if cancel is not None and cancel.cancelled:
                self.cancel()
                cancel.check()
            fraction, message = self.progress
            progress("detect", fraction, message)

    def _run(self) -> None:
        search = self._search
        assert search is not None, "an EarlyDetection runs once"
        try:
            for number, key in enumerate(self.keys):
                if self.stopped:
                    return
                if key not in self.wanted or key in self._cache:
                    continue

                def report(stage: str, fraction: float, message: str = "", n: int = number) -> None:
                    self.progress = ((n + fraction) / len(self.keys), message)

                try:
                    self._cache.put(key, search(key, report, _WantedToken(self, key)))
                except Cancelled:
                    continue
                except Exception as error:  # noqa: BLE001 - kept; Pipeline.segment searches again and reports it
                    self.errors[key] = error
        finally:
            self._search = None  # let go of the volume and its slices
            self._done.set()
