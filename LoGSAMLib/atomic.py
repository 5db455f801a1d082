"""Atomic file writes: a reader never sees a half-written output, a failure leaves none.

One file: :func:`atomic_path`. Several files that belong together (label maps + report):
:class:`OutputTransaction` writes each to a hidden temporary name in its target folder, fsyncs
them all and renames them into place together; a failure or a signal at any step removes the new
files and puts back any file they replaced, so a folder holds the complete set or none of it.

Temporary names are ``.<name>.logsam-<pid>-<random>.part<suffix>``: recognisable, and
:func:`clean_stale_parts` removes those of a process that no longer runs (a killed run) the next
time something is written into that folder.

Signals: :func:`handle_signals` turns SIGINT and SIGTERM into :class:`Interrupted` (a
``KeyboardInterrupt``), so every ``finally``/``except`` cleanup runs for both; inside
:func:`critical` (the renames of a commit) a signal is held back until the section ends.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PART_MARK = ".logsam-"
_PART_RE = re.compile(r"^\..+\.logsam-(\d+)-[0-9a-f]+\.part")
# Test hook: "POINT:FILE" makes a transaction create FILE at POINT and wait while FILE exists
# (points: "written-N" after the N-th file is written, "renamed-N" after its N-th rename).
PAUSE_ENV = "LOGSAM_TEST_PAUSE"

# Indirections so that the fault-injection tests can fail one filesystem step at a time.
_fsync: Callable[[int], None] = os.fsync
_replace: Callable[[str | os.PathLike, str | os.PathLike], None] = os.replace


def _link(source: str | os.PathLike, link: str | os.PathLike) -> None:
    os.link(source, link, follow_symlinks=False)


# Filesystems without hard links (FAT, some shares): the old file is copied aside instead.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


# ------------------------------------------------------------------------------- signals


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


_critical_depth = 0
_held: list[int] = []


def _on_signal(signum: int, _frame: object) -> None:
    if _critical_depth:
        _held.append(signum)  # raised when the critical section ends
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while inside (main thread only; else a no-op)."""
    try:
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals to whoever owns them
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM (as handled by :func:`handle_signals`) until the block ends."""
    global _critical_depth
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if not _critical_depth and _held:
            signum = _held[0]
            _held.clear()
            raise Interrupted(signum)


# ------------------------------------------------------------------------------- temp names


def _full_suffix(target: Path) -> str:
    return "".join(target.suffixes) or ".tmp"


def temp_name(target: Path, suffix: str | None = None) -> Path:
    """A fresh hidden name next to ``target`` keeping its full suffix (writers pick formats by it)."""
    suffix = _full_suffix(target) if suffix is None else suffix
    stem = target.name[: len(target.name) - len(suffix)] if target.name.endswith(suffix) else target.name
    return target.with_name(f".{stem}{PART_MARK}{os.getpid()}-{secrets.token_hex(4)}.part{suffix}")


def _create_temp(target: Path, suffix: str | None) -> Path:
    while True:
        tmp = temp_name(target, suffix)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (owned by anyone): a temporary file or folder it named is still in use."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that a killed run left in ``folder``; returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PART_RE.match(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _pause(point: str) -> None:
    """The test hook (see :data:`PAUSE_ENV`); costs one environment lookup otherwise."""
    hook = os.environ.get(PAUSE_ENV)
    if not hook:
        return
    wanted, _, flag = hook.partition(":")
    if wanted != point or not flag:
        return
    ready = Path(flag)
    ready.write_text(str(os.getpid()))
    deadline = time.monotonic() + 60.0
    while ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


# ------------------------------------------------------------------------------- one file


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    The temporary file keeps ``target``'s full suffix (``.nii.gz``, ``.seg.nrrd``) so that
    writers which choose the format by extension behave the same. On any exception the
    temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target, suffix)
    try:
        yield tmp
        _replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------- several files


class OutputTransaction:
    """Write several files so that all of them appear, or none (and what they replace stays).

    ::

        with OutputTransaction([a, b]) as tx:
            write_a(tx.temp(a)); write_b(tx.temp(b))
        # leaving the block without an exception commits; with one, nothing changed

    ``suffixes`` gives a target's format suffix where its name alone is ambiguous.
    """

    #: Targets of the last commit in this process (the CLI reports them after a late Ctrl-C).
    last_committed: list[Path] = []

    def __init__(self, targets: Sequence[str | os.PathLike], suffixes: dict[Path, str] | None = None) -> None:
        self.targets = [Path(t) for t in targets]
        if len({os.path.abspath(t) for t in self.targets}) != len(self.targets):
            raise ValueError("an output transaction cannot write the same file twice")
        self._suffixes = suffixes or {}
        self._temps: dict[Path, Path] = {}
        self._created_dirs: list[Path] = []
        self.committed = False

    def __enter__(self) -> OutputTransaction:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def temp(self, target: str | os.PathLike) -> Path:
        """The temporary path to write ``target``'s content to (created empty, in its folder)."""
        target = Path(target)
        if target not in self.targets:
            raise ValueError(f"{target} is not an output of this transaction")
        if target not in self._temps:
            self._make_parents(target.parent)
            clean_stale_parts(target.parent)
            self._temps[target] = _create_temp(target, self._suffixes.get(target))
        return self._temps[target]

    def written(self, target: str | os.PathLike) -> None:
        """Say that ``target``'s temporary file is complete (only the test hook listens)."""
        _pause(f"written-{list(self._temps).index(Path(target)) + 1}")

    def _make_parents(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            path.mkdir()
            self._created_dirs.append(path)

    def commit(self) -> None:
        """fsync every temporary file, then rename them all into place (signals held back)."""
        unwritten = [t for t in self.targets if t not in self._temps]
        if unwritten:
            self.abort()
            raise RuntimeError(f"no content was written for {', '.join(map(str, unwritten))}")
        try:
            for tmp in self._temps.values():
                _fsync_path(tmp)
        except BaseException:
            self.abort()
            raise
        backups: dict[Path, Path] = {}
        renamed: list[Path] = []
        with critical():
            try:
                for n, (target, tmp) in enumerate(self._temps.items(), start=1):
                    if os.path.lexists(target):
                        backups[target] = self._back_up(target)
                    _replace(tmp, target)
                    renamed.append(target)
                    _pause(f"renamed-{n}")
                for folder in {t.parent for t in self.targets}:
                    with contextlib.suppress(OSError):  # not every filesystem syncs folders
                        _fsync_path(folder, directory=True)
            except BaseException:
                self._roll_back(renamed, backups)
                self.abort()
                raise
            for backup in backups.values():
                with contextlib.suppress(OSError):
                    backup.unlink()
            self.committed = True
            OutputTransaction.last_committed = list(self.targets)

    @staticmethod
    def _back_up(target: Path) -> Path:
        """Keep the file a target replaces reachable until the commit is done (a hard link, else a copy)."""
        backup = _create_temp(target, ".bak")
        backup.unlink()
        try:
            _link(target, backup)
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            shutil.copy2(target, backup, follow_symlinks=False)
        return backup

    def _roll_back(self, renamed: list[Path], backups: dict[Path, Path]) -> None:
        for target in renamed:
            with contextlib.suppress(OSError):
                if target in backups:
                    os.replace(backups.pop(target), target)
                else:
                    target.unlink()
        for backup in backups.values():
            with contextlib.suppress(OSError):
                backup.unlink()

    def abort(self) -> None:
        """Remove every temporary file and the folders this transaction created; idempotent."""
        for tmp in self._temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._temps.clear()
        for folder in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        self._created_dirs.clear()


def nearest_existing(folder: Path) -> Path:
    """``folder`` or its closest existing ancestor."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable_folder(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or the ancestor it would be created in), or None.

    A real probe (create and delete a hidden file), since permission bits lie for root and on
    read-only mounts.
    """
    existing = nearest_existing(folder)
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".logsam-probe-", dir=existing)
    except OSError as error:
        return f"cannot create files in {existing} ({error.strerror or error})"
    os.close(fd)
    os.unlink(probe)
    return None
