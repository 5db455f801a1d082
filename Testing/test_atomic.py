"""Fault injection for the output transaction: whichever filesystem step fails, the folder holds the
complete new set or exactly what it held before (no partial set, no temporary file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LoGSAMLib import atomic
from LoGSAMLib.atomic import OutputTransaction

NAMES = ("seg.nii.gz", "seg.seg.nrrd", "seg.report.json")
OLD = {"seg.nii.gz": b"old label map"}  # a previous run's output that the new set replaces


def _state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _new(name: str) -> bytes:
    return f"new {name}".encode()


def _write_all(folder: Path, fail_write: int = 0) -> None:
    targets = [folder / n for n in NAMES]
    with OutputTransaction(targets) as transaction:
        for n, target in enumerate(targets, start=1):
            if n == fail_write:
                transaction.temp(target).write_bytes(b"half")
                raise OSError(28, "No space left on device")
            transaction.temp(target).write_bytes(_new(target.name))
            transaction.written(target)


def _count_calls(monkeypatch, folder: Path) -> dict[str, int]:
    calls = {"_fsync": 0, "_replace": 0, "_link": 0}
    for name in calls:
        real = getattr(atomic, name)

        def counting(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(atomic, name, counting)
    _write_all(folder)
    monkeypatch.undo()
    return calls


STEPS = {"_fsync": 4, "_replace": 3, "_link": 1}  # 3 files + the folder; 3 renames; 1 backup of the old file


def test_the_step_counts_cover_every_operation(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "seg.nii.gz").write_bytes(OLD["seg.nii.gz"])
    assert _count_calls(monkeypatch, folder) == STEPS
    assert _state(folder) == {n: _new(n) for n in NAMES}


FAULTS = [("write", n) for n in range(1, len(NAMES) + 1)] + [
    (op, n) for op, count in STEPS.items() for n in range(1, count + 1)]


@pytest.mark.parametrize(("operation", "nth"), FAULTS, ids=[f"{op.strip('_')}-{n}" for op, n in FAULTS])
def test_a_failing_step_leaves_all_or_nothing(operation, nth, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "seg.nii.gz").write_bytes(OLD["seg.nii.gz"])
    if operation != "write":
        real = getattr(atomic, operation)
        seen = {"n": 0}

        def failing(*args):
            seen["n"] += 1
            if seen["n"] == nth:
                raise OSError(5, f"injected failure of {operation} #{nth}")
            return real(*args)

        monkeypatch.setattr(atomic, operation, failing)
    try:
        _write_all(folder, fail_write=nth if operation == "write" else 0)
        failed = False
    except OSError:
        failed = True
    monkeypatch.undo()
    state = _state(folder)
    complete = {n: _new(n) for n in NAMES}
    if operation == "_fsync" and nth == STEPS["_fsync"]:
        assert not failed and state == complete  # the folder's own fsync is best effort
    else:
        assert failed and state == OLD  # the old file back, no new file, no temporary file


def test_a_new_folder_is_removed_when_the_transaction_fails(tmp_path):
    folder = tmp_path / "new" / "deeper"
    with pytest.raises(OSError):
        _write_all(folder, fail_write=2)
    assert list(tmp_path.iterdir()) == []


def test_clean_stale_parts_removes_only_dead_processes_files(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, encoding="utf-8", check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".seg.logsam-{dead_pid}-0a1b2c3d.part.nii.gz"
    mine = atomic.temp_name(tmp_path / "seg.nii.gz")
    unrelated = tmp_path / ".seg.nii.gz.part"
    for path in (stale, mine, unrelated):
        path.write_bytes(b"x")
    assert atomic.clean_stale_parts(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, unrelated.name])


def test_a_filesystem_without_hard_links_still_commits(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "seg.nii.gz").write_bytes(OLD["seg.nii.gz"])

    def no_links(source, link):
        raise OSError(1, "Operation not permitted")  # what FAT and some network shares answer

    monkeypatch.setattr(atomic, "_link", no_links)
    _write_all(folder)
    assert _state(folder) == {n: _new(n) for n in NAMES}


def test_an_extra_output_joins_the_plan_and_its_checks(tmp_path):
    from LoGSAMLib.errors import InputError
    from LoGSAMLib.outputs import OutputPlan
    from LoGSAMLib.types import Segmentation, Volume

    source = tmp_path / "in.nii.gz"
    source.write_bytes(b"input")
    plan = OutputPlan.build([tmp_path / "out" / "seg.nii.gz"], None, [source])
    with pytest.raises(InputError, match="it is the input"):
        plan.add_extra(source, lambda path: path.write_text("x"))
    assert plan.paths == [tmp_path / "out" / "seg.nii.gz", tmp_path / "out" / "seg.report.json"]
    plan.add_extra(tmp_path / "out" / "seg.check.txt", lambda path: path.write_text("cross-check"))
    labels = Volume(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    plan.write(Segmentation(labels, {1: "glioma"}), {"outputs": []})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seg.check.txt", "seg.nii.gz",
                                                                      "seg.report.json"]
    assert source.read_bytes() == b"input"
