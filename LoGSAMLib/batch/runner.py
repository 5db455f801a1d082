"""The batch driver: skip the cases already finished, hand the rest to a pool of workers, retry a
case whose worker died (bounded), record every outcome, and write the summary even after Ctrl-C.

A pool is anything with ``size``, ``submit(case, attempt)``, ``next_result() -> (case, row |
WorkerLost)`` and ``close()``: :class:`InlinePool` (this process), :class:`ProcessPool` (local
worker processes) and ``ray_pool.RayPool`` (Ray actors). Every worker holds a
:class:`~.case.CaseRunner`, so models load once per worker, never per case.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .case import BatchSettings, CaseRunner, verified_report
from .manifest import Case
from .summary import FINISHED, failed_row, row_from_report, write_summary

MAX_ATTEMPTS = 3
# Test hook: the driver sends itself SIGINT (a real Ctrl-C) after this many results of this run.
INTERRUPT_ENV = "LOGSAM_TEST_INTERRUPT_AFTER"


@dataclass
class WorkerLost:
    """The worker running a case died (killed, out of memory, node lost); the case may be retried."""

    message: str


class Pool(Protocol):
    size: int

    def submit(self, case: Case, attempt: int) -> None: ...

    def next_result(self) -> tuple[Case, dict[str, Any] | WorkerLost]: ...

    def close(self) -> None: ...


@dataclass
class BatchResult:
    rows: list[dict[str, Any]]
    written: list[Path]
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    evaluation: Any = None  # evaluation.EvaluationResult with ground truth
    seconds: float = 0.0


def run_batch(cases: list[Case], settings: BatchSettings, make_pool: Callable[[], Pool],
              progress: Callable[[int, int, dict[str, Any]], None] | None = None,
              max_attempts: int = MAX_ATTEMPTS) -> BatchResult:
    """Run every unfinished case of ``cases``; write ``summary.csv``; return the rows in manifest order."""
    from ..atomic import clean_stale_parts
    from .summary import evaluation_result

    started = time.perf_counter()
    folder = Path(settings.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_parts(folder)  # temporary files of a killed earlier run
    rows: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}
    todo: list[Case] = []
    for case in cases:
        report = verified_report(case, settings)
        if report is None:
            todo.append(case)
        else:
            reports[case.case] = report
            rows[case.case] = row_from_report(case, report, this_run=False)
    interrupted = False
    if todo:
        try:
            _drive(todo, settings, make_pool, rows, reports, progress, max_attempts)
        except KeyboardInterrupt:
            interrupted = True
    for case in cases:
        if case.case not in rows:
            rows[case.case] = failed_row(case, "not run: the batch was interrupted", 0, status="not_run")
    ordered = [rows[c.case] for c in cases]
    written = write_summary(folder, ordered, [reports[c.case] for c in cases if c.case in reports])
    counts = collections.Counter(r["status"] for r in ordered)
    return BatchResult(ordered, written, interrupted, dict(counts),
                       evaluation_result([reports[c.case] for c in cases if c.case in reports]),
                       time.perf_counter() - started)


def _drive(todo: list[Case], settings: BatchSettings, make_pool: Callable[[], Pool], rows: dict, reports: dict,
           progress, max_attempts: int) -> None:
    interrupt_after = int(os.environ.get(INTERRUPT_ENV, "0") or 0)
    queue = collections.deque(todo)
    attempts: dict[str, int] = collections.Counter()
    finished = 0
    pool = make_pool()
    try:
        busy = 0
        while queue or busy:
            while queue and busy < pool.size:
                case = queue.popleft()
                attempts[case.case] += 1
                pool.submit(case, attempts[case.case])
                busy += 1
            case, outcome = pool.next_result()
            busy -= 1
            if isinstance(outcome, WorkerLost):
                if attempts[case.case] < max_attempts:
                    queue.appendleft(case)  # retried on another (fresh) worker
                    continue
                outcome = failed_row(case, f"its worker died {attempts[case.case]} times ({outcome.message})",
                                     attempts[case.case])
            rows[case.case] = outcome
            if outcome["status"] in FINISHED:
                report = verified_report(case, settings)
                if report is not None:
                    reports[case.case] = report
            finished += 1
            if progress is not None:
                progress(finished, len(todo), outcome)
            if interrupt_after and finished == interrupt_after:
                os.kill(os.getpid(), signal.SIGINT)
    finally:
        pool.close()


# ------------------------------------------------------------------------------------- pools


class InlinePool:
    """One worker: this process (the default; Ctrl-C cancels the running case, no partial output)."""

    size = 1

    def __init__(self, settings: BatchSettings) -> None:
        self.runner = CaseRunner(settings)
        self._waiting: collections.deque[tuple[Case, int]] = collections.deque()

    def submit(self, case: Case, attempt: int) -> None:
        self._waiting.append((case, attempt))

    def next_result(self) -> tuple[Case, dict[str, Any]]:
        case, attempt = self._waiting.popleft()
        return case, self.runner.run(case, attempt)

    def close(self) -> None:
        self._waiting.clear()


_worker_runner: CaseRunner | None = None


def _init_worker(settings: BatchSettings, threads: int | None) -> None:
    global _worker_runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if threads:
        import torch

        torch.set_num_threads(threads)
    _worker_runner = CaseRunner(settings, in_worker=True)
    _worker_runner.load_models()


def _worker_ready(linger_s: float) -> int:
    time.sleep(linger_s)  # held a moment, so that the next ready call goes to another worker
    return os.getpid()


def _run_in_worker(case: Case, attempt: int) -> dict[str, Any]:
    assert _worker_runner is not None
    return _worker_runner.run(case, attempt)


class ProcessPool:
    """N local worker processes, each with its own models (``--workers N``; spawned, not forked)."""

    def __init__(self, settings: BatchSettings, workers: int, threads_per_worker: int | None = None) -> None:
        self.size = workers
        self._args = (settings, threads_per_worker)
        self._executor: futures.ProcessPoolExecutor | None = None
        self._running: dict[futures.Future, Case] = {}

    def _pool(self) -> futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = futures.ProcessPoolExecutor(
                self.size, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=self._args)
        return self._executor

    def start(self) -> int:
        """Start the workers and wait until they have loaded their models; returns how many answered."""
        calls = [self._pool().submit(_worker_ready, 0.5) for _ in range(self.size)]
        try:
            return len({call.result() for call in calls})
        except futures.process.BrokenProcessPool:  # the initializer failed: load here to show its error
            self._discard()
            CaseRunner(self._args[0]).load_models()
            raise

    def submit(self, case: Case, attempt: int) -> None:
        self._running[self._pool().submit(_run_in_worker, case, attempt)] = case

    def next_result(self) -> tuple[Case, dict[str, Any] | WorkerLost]:
        done, _ = futures.wait(list(self._running), return_when=futures.FIRST_COMPLETED)
        future = next(iter(done))
        case = self._running.pop(future)
        try:
            return case, future.result()
        except futures.process.BrokenProcessPool as error:
            # A dead worker breaks the whole executor: its other cases come back lost too, and a
            # fresh executor takes the retries.
            self._discard()
            return case, WorkerLost(f"worker process died: {error}")

    def _discard(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()  # an interrupted batch stops now; outputs are transactions
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def print_progress(total_label: str = "cases") -> tuple[Callable, Callable[[], None]]:
    """A cases-done bar with an ETA on a terminal; one line per failed case otherwise."""
    bar: list[Any] = []

    def callback(done: int, total: int, row: dict[str, Any]) -> None:
        if sys.stderr.isatty():
            if not bar:
                from tqdm import tqdm

                bar.append(tqdm(total=total, desc=total_label, unit="case", file=sys.stderr))
            bar[0].update(done - bar[0].n)
            bar[0].set_postfix_str(f"last: {row['case']} {row['status']}", refresh=True)
        elif row["status"] == "failed":
            print(f"  {row['case']}: failed: {row['error']}", file=sys.stderr, flush=True)

    def close() -> None:
        if bar:
            bar[0].close()

    return callback, close
