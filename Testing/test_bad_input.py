"""The bad-input matrix: every way a careless user or an attacker was seen to break a promise.

Each row runs the real ``logsam`` command (in this process through ``main``, or as a real
subprocess where signals and exit statuses matter) and asserts the exit code, the one-line
message, that every input file is byte-for-byte unchanged, and that the output folder holds the
complete set of outputs or nothing. The segmenter is the instant BoxSegmenter double (box mode:
no detector), because the subject here is everything around the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LoGSAMLib import models
from LoGSAMLib.cli import main
from LoGSAMLib.types import Volume
from LoGSAMLib.volume import write_volume

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "Testing" / "box_double_cli.py"
BOX = ["--box-ras", "-22", "-22", "2", "-42", "-42", "6", "--segmenter", "litemedsam", "--device", "cpu"]
COMPLETE = {"seg.nii.gz", "seg.seg.nrrd", "seg.report.json"}  # what a good run writes into out/
IS_ROOT = os.geteuid() == 0


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _phantom(shape=(8, 64, 64)) -> np.ndarray:
    rng = np.random.default_rng(0)
    array = (rng.random(shape) * 100).astype(np.float32)
    array[2:6, 20:40, 20:40] += 300
    return array


def _write(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_volume(Volume(array, spacing, (0.0, 0.0, 0.0), np.eye(3)), path)
    return path


def _nifti_set_pixdim(path: Path, pixdim: tuple[float, float, float]) -> None:
    """Patch pixdim[1..3] of an uncompressed NIfTI-1 header in place (as a broken converter writes it)."""
    data = bytearray(path.read_bytes())
    data[80:92] = struct.pack("<3f", *pixdim)
    path.write_bytes(bytes(data))


def _mha_spacing(path: Path, spacing: str) -> None:
    data = path.read_bytes().replace(b"ElementSpacing = 1 1 1", f"ElementSpacing = {spacing}".encode())
    path.write_bytes(data)


def _dicom_two_series(folder: Path) -> tuple[str, str]:
    from test_volume import _write_dicom_series

    volume = Volume(_phantom((3, 64, 64)).astype(np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    first, second = "1.2.826.0.1.3680043.8.498.301", "1.2.826.0.1.3680043.8.498.302"
    _write_dicom_series(volume, folder, first, description="T1 post contrast")
    _write_dicom_series(volume.with_array(volume.array[::-1].copy()), folder, second, description="FLAIR")
    return first, second


# ------------------------------------------------------------------------------ the matrix


@dataclass
class Case:
    """One row: ``setup(tmp)`` builds the inputs and returns the command line (``{in}`` is the input,
    ``{out}`` the output folder); the run must exit with ``code`` and, when failing, print one line
    matching ``message``; ``outputs`` is what out/ holds afterwards (COMPLETE or nothing)."""

    id: str
    setup: Callable[[Path], list[str]]
    code: int
    message: str = ""
    outputs: set[str] = field(default_factory=set)
    report_has: str = ""  # a text the report's warnings must contain
    root_ok: bool = True  # False: the row needs a non-root user (permission bits)


def _input(tmp: Path, name: str = "in.nii.gz") -> Path:
    return _write(tmp / "in" / name, _phantom())


def _seg(*extra: str, volume: str = "{in}") -> list[str]:
    return ["segment", volume, *BOX, "-o", "{out}/seg.nii.gz", "-o", "{out}/seg.seg.nrrd", *extra]


def _with_input(builder: Callable[[Path], Path], *extra: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        builder(tmp)
        return _seg(*extra)
    return setup


def _symlink_output(tmp: Path) -> list[str]:
    source = _input(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "seg.nii.gz").symlink_to(source)
    return _seg()


def _report_symlink(tmp: Path) -> list[str]:
    source = _input(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "r.json").symlink_to(source)
    return _seg("--report", "{out}/r.json")


def _hardlink_output(tmp: Path) -> list[str]:
    source = _input(tmp)
    (tmp / "out").mkdir()
    os.link(source, tmp / "out" / "seg.nii.gz")
    return _seg()


def _dicom_member_output(tmp: Path) -> list[str]:
    _dicom_two_series(tmp / "in")
    member = sorted((tmp / "in").glob("*.dcm"))[0]
    return ["segment", str(tmp / "in"), "--series", "1.2.826.0.1.3680043.8.498.301", *BOX, "-o", str(member)]


def _dicom_two_series_setup(tmp: Path) -> list[str]:
    _dicom_two_series(tmp / "in")
    return ["segment", str(tmp / "in"), *BOX, "-o", "{out}/seg.nii.gz", "-o", "{out}/seg.seg.nrrd"]


def _dicom_pick_series(tmp: Path) -> list[str]:
    return [*_dicom_two_series_setup(tmp), "--series", "1.2.826.0.1.3680043.8.498.302"]


def _truncated_gz(tmp: Path) -> Path:
    path = _input(tmp)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_nii(tmp: Path) -> Path:
    path = _write(tmp / "in" / "in.nii", _phantom())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])
    return path


def _nonfinite(name: str, value: float, everywhere: bool = False) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        array = _phantom()
        if everywhere:
            array[...] = value
        else:
            array[3, 5, 5] = value
        return _write(tmp / "in" / name, array)
    return build


def _nifti_pixdim(pixdim: tuple[float, float, float]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = _write(tmp / "in" / "in.nii", _phantom())
        _nifti_set_pixdim(path, pixdim)
        return path
    return build


def _mha(spacing: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = _write(tmp / "in" / "in.mha", _phantom())
        _mha_spacing(path, spacing)
        return path
    return build


def _plain(*args: str, volume_name: str = "in.nii.gz") -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        _input(tmp, volume_name)
        return [a.replace("{in_dir}", str(tmp / "in")) for a in args]
    return setup


def _readonly_folder(tmp: Path) -> list[str]:
    _input(tmp)
    (tmp / "out").mkdir()
    os.chmod(tmp / "out", 0o555)
    return _seg()


def _volume_file(name: str, array: np.ndarray) -> Callable[[Path], Path]:
    return lambda tmp: _write(tmp / "in" / name, array)


def _text_file(tmp: Path) -> Path:
    path = tmp / "in" / "in.nii.gz"
    path.parent.mkdir(parents=True)
    path.write_text("not an image")
    return path


def _four_d(tmp: Path) -> Path:
    path = tmp / "in" / "in.nii.gz"
    path.parent.mkdir(parents=True)
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(_phantom()) for _ in range(2)]), str(path))
    return path


def _labels(tmp: Path) -> Path:
    array = np.zeros((8, 64, 64), np.uint8)
    array[2:5, 10:20, 10:20] = 1
    return _write(tmp / "in" / "in.nii.gz", array)


SEG_CASES = [
    # The input is never overwritten, and outputs never collide (checked before any work).
    Case("output-is-input", _plain("segment", "{in}", *BOX, "-o", "{in}"), 2, r"Refusing to write .*it is the input"),
    Case("report-is-input", _plain("segment", "{in}", *BOX, "-o", "{out}/seg.nii.gz", "--report", "{in}"), 2,
         r"it is the input"),
    Case("report-symlink-to-input", _report_symlink, 2, r"Refusing to write .*r\.json: it is the input"),
    Case("report-is-an-output", _plain("segment", "{in}", *BOX, "-o", "{out}/seg.nii.gz", "--report",
                                       "{out}/seg.nii.gz"), 2, r"Two outputs are the same file"),
    Case("same-output-twice", _plain("segment", "{in}", *BOX, "-o", "{out}/seg.nii.gz", "-o", "{out}/./seg.nii.gz"),
         2, r"Two outputs are the same file"),
    Case("output-symlink-to-input", _symlink_output, 2, r"it is the input"),
    Case("output-hardlink-to-input", _hardlink_output, 2, r"it is the input"),
    Case("output-is-dicom-series-member", _dicom_member_output, 2, r"it is the input"),
    Case("output-is-a-folder", _plain("segment", "{in}", *BOX, "-o", "{in_dir}"), 2, r"it is a folder"),
    Case("output-unsupported-extension", _plain("segment", "{in}", *BOX, "-o", "{out}/seg.vtk"), 2,
         r"use one of \.seg\.nrrd"),
    Case("report-not-json", _plain("segment", "{in}", *BOX, "-o", "{out}/seg.nii.gz", "--report", "{out}/r.txt"),
         2, r"must be a \.json file"),
    Case("output-folder-read-only", _readonly_folder, 2, r"cannot create files in .*Permission denied",
         root_ok=False),
    Case("output-in-unwritable-system-folder", _plain("segment", "{in}", *BOX, "-o", "/sys/seg.nii.gz"), 2,
         r"Cannot write /sys/seg\.nii\.gz: cannot create files in /sys"),
    # Corrupt data is refused, never segmented.
    Case("truncated-nii-gz", _with_input(_truncated_gz), 2, r"truncated or damaged"),
    Case("truncated-nii", _with_input(_truncated_nii), 2, r"truncated \(\d+ of the \d+ data bytes"),
    Case("nan-in-nii-gz", _with_input(_nonfinite("in.nii.gz", np.nan)), 2, r"holds 1 NaN or infinite voxels"),
    Case("inf-in-nii", _with_input(_nonfinite("in.nii", np.inf)), 2, r"holds 1 NaN or infinite voxels"),
    Case("all-nan-nii-gz", _with_input(_nonfinite("in.nii.gz", np.nan, everywhere=True)), 2,
         r"holds 32768 NaN or infinite voxels"),
    Case("nan-in-nrrd", _with_input(_nonfinite("in.nrrd", np.nan)), 2, r"NaN or infinite"),
    Case("inf-in-mha", _with_input(_nonfinite("in.mha", -np.inf)), 2, r"NaN or infinite"),
    Case("negative-spacing-mha", _with_input(_mha("1 -1 1")), 2, r"voxel spacing \(1, -1, 1\) mm"),
    Case("zero-spacing-mha", _with_input(_mha("1 0 1")), 2, r"voxel spacing \(1, 0, 1\) mm"),
    Case("negative-pixdim-nii", _with_input(_nifti_pixdim((1.0, -1.0, 1.0))), 2, r"spacing must be positive"),
    Case("zero-pixdim-nii", _with_input(_nifti_pixdim((0.0, 1.0, 1.0))), 2, r"spacing must be positive"),
    Case("not-an-image", _with_input(_text_file), 2, r"not a supported image"),
    Case("missing-input", _plain("segment", "{in_dir}/absent.nii.gz", *BOX, "-o", "{out}/seg.nii.gz"), 2,
         r"No such file or folder"),
    Case("four-d-without-index", _with_input(_four_d), 2, r"4D with 2 volumes.*--volume-index"),
    Case("constant-volume", _with_input(_volume_file("in.nii.gz", np.full((8, 64, 64), 7, np.float32))), 2,
         r"constant"),
    Case("label-map-as-input", _with_input(_labels), 2, r"looks like a label map"),
    # DICOM folders with several series.
    Case("dicom-two-series", _dicom_two_series_setup, 2,
         r'2 DICOM series: .*"T1 post contrast" \(3 slices\).*"FLAIR" \(3 slices\).*--series UID'),
    Case("dicom-series-picked", _dicom_pick_series, 0, outputs=COMPLETE),
    # Numeric options.
    Case("coarse-step-negative", _plain(*_seg("--coarse-step-mm", "-5")), 2, r"--coarse-step-mm -5\.0 is not allowed"),
    Case("coarse-step-nan", _plain(*_seg("--coarse-step-mm", "nan")), 2, r"--coarse-step-mm nan is not allowed"),
    Case("batch-size-zero", _plain(*_seg("--batch-size", "0")), 2, r"--batch-size 0 is not allowed"),
    Case("detect-every-zero", _plain(*_seg("--detect-every", "0")), 2, r"--detect-every 0 is not allowed"),
    Case("box-threshold-above-one", _plain(*_seg("--box-threshold", "2")), 2, r"--box-threshold 2\.0 is not allowed"),
    Case("volume-index-negative", _plain(*_seg("--volume-index", "-1")), 2, r"--volume-index -1 is not allowed"),
    Case("detector-size-tiny", _plain(*_seg("--detector-size", "10")), 2, r"Detector size 10 px is out of range"),
    Case("box-of-zero-size", _plain("segment", "{in}", "--box-ras", "-22", "-22", "2", "-22", "-22", "2",
                                    "-o", "{out}/seg.nii.gz"), 2, r"zero size along R and A and S"),
    Case("box-flat-warns", _plain("segment", "{in}", "--box-ras", "-22", "-22", "4", "-42", "-42", "4", "--device",
                                  "cpu", "-o", "{out}/seg.nii.gz", "-o", "{out}/seg.seg.nrrd"), 0, outputs=COMPLETE,
         report_has="zero size along S"),
    Case("box-outside-image-refused", _plain("segment", "{in}", "--box-ras", "500", "500", "500", "600", "600",
                                             "600", "-o", "{out}/seg.nii.gz"), 2, r"does not overlap the image"),
    # Text.
    Case("text-not-utf8", _plain("run", "{in}", "--text", "glioma \udcff left", "-o", "{out}/seg.nii.gz"), 2,
         r"The dictation text is not valid UTF-8 \(an undecodable byte at character 8\)"),
    Case("extract-text-not-utf8", lambda tmp: ["extract", "no glioma \udcfe"], 2, r"dictation text is not valid UTF-8"),
    # A good run, for contrast: the complete set.
    Case("good-run", _plain(*_seg()), 0, outputs=COMPLETE),
]


def _expand(argv: list[str], tmp: Path) -> list[str]:
    inputs = sorted((tmp / "in").glob("in.*"))
    source = str(inputs[0]) if inputs else ""
    return [a.replace("{in}", source).replace("{out}", str(tmp / "out")) for a in argv]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def _out_files(tmp: Path) -> set[str]:
    out = tmp / "out"
    return {p.name for p in out.iterdir() if p.is_file() or p.is_symlink()} if out.exists() else set()


@pytest.fixture
def box_double(monkeypatch):
    from LoGSAMLib.pipeline import Pipeline
    from LoGSAMLib.testing.doubles import BoxSegmenter

    monkeypatch.setattr(Pipeline, "segmenter", property(lambda self: BoxSegmenter()))


@pytest.mark.parametrize("case", SEG_CASES, ids=[c.id for c in SEG_CASES])
def test_segment_and_run_matrix(case, tmp_path, capfd, box_double):
    if IS_ROOT and not case.root_ok:
        pytest.skip("root ignores permission bits; the /sys row covers an unwritable folder")
    argv = _expand(case.setup(tmp_path), tmp_path)
    before_out = _out_files(tmp_path)
    inputs = _snapshot(tmp_path / "in")
    code = main(argv)
    out, err = capfd.readouterr()  # file-descriptor level: ITK writes its warnings there
    assert code == case.code, err
    assert _snapshot(tmp_path / "in") == inputs  # every input file unchanged, none added there
    if case.code:
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert re.search(case.message, err), err
        assert _out_files(tmp_path) == before_out  # nothing written (a pre-existing link stays as it was)
    else:
        assert _out_files(tmp_path) == case.outputs
        report = json.loads((tmp_path / "out" / "seg.report.json").read_text())
        assert report["outputs"] == [str(tmp_path / "out" / n) for n in ("seg.nii.gz", "seg.seg.nrrd")]
        if case.report_has:
            assert any(case.report_has in w for w in report["warnings"]), report["warnings"]
    if (tmp_path / "out").exists():
        os.chmod(tmp_path / "out", 0o755)


def test_second_output_failing_leaves_nothing(tmp_path, capsys, box_double, monkeypatch):
    """The .seg.nrrd writer fails after the label map was written: neither file, nor a report, stays."""
    from LoGSAMLib import outputs

    def broken(seg, labels, path, models=None):
        path.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(outputs.SEGMENTATION_WRITERS, ".seg.nrrd", broken)
    source = _input(tmp_path)
    before = _sha(source)
    code = main(_expand(_seg(), tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "No space left on device; nothing was written" in err, err
    assert _sha(source) == before
    assert not (tmp_path / "out").exists()  # the folder it created is gone too


# ------------------------------------------------------------------------------ signals (subprocesses)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    return env


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(RUNNER), *argv], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _wait_for(flag: Path, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached the pause point"
        time.sleep(0.02)


@pytest.mark.parametrize(("point", "sig", "code", "message", "outputs"), [
    ("written-1", signal.SIGINT, 130, "interrupted; no output was written", set()),
    ("written-2", signal.SIGTERM, 143, "terminated; no output was written", set()),
    ("renamed-1", signal.SIGTERM, 143, "terminated; the outputs were already complete", COMPLETE),
], ids=["sigint-between-outputs", "sigterm-between-outputs", "sigterm-during-renames"])
def test_signal_at_a_fixed_point(point, sig, code, message, outputs, tmp_path):
    source = _input(tmp_path)
    before = _sha(source)
    flag = tmp_path / "paused"
    process = _spawn(_expand(_seg(), tmp_path), _env(LOGSAM_TEST_PAUSE=f"{point}:{flag}"))
    _wait_for(flag, process)
    process.send_signal(sig)
    if point.startswith("renamed"):
        time.sleep(0.2)  # the signal is held back while the renames run; let them go on
        flag.unlink()
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.count("\n") == 1 and message in err, err
    assert _sha(source) == before
    assert _out_files(tmp_path) == outputs  # no hidden temporary file either (nor the folder it created)


def test_a_killed_runs_temporary_files_are_cleaned_by_the_next_run(tmp_path):
    source = _input(tmp_path)
    flag = tmp_path / "paused"
    argv = _expand(_seg(), tmp_path)
    process = _spawn(argv, _env(LOGSAM_TEST_PAUSE=f"written-2:{flag}"))
    _wait_for(flag, process)
    process.kill()  # SIGKILL: no handler runs
    process.communicate(timeout=30)
    left = {p.name for p in (tmp_path / "out").iterdir()}
    assert left and all(".logsam-" in n and ".part" in n and n.startswith(".") for n in left), left
    done = subprocess.run([sys.executable, str(RUNNER), *argv], env=_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == COMPLETE
    assert source.exists()


def test_exit_status_and_one_line_in_a_real_process(tmp_path):
    """The same refusal as the in-process row, from `python -m LoGSAMLib.cli` itself."""
    source = _input(tmp_path)
    before = _sha(source)
    result = subprocess.run([sys.executable, "-m", "LoGSAMLib.cli", "segment", str(source), *BOX, "-o",
                             str(source)], env=_env(), capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "it is the input" in result.stderr
    assert _sha(source) == before


# ------------------------------------------------------------------------------ the model cache


PAYLOAD = b"weights" * 100


def _registry(home: Path, entries: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "registry.json").write_text(json.dumps(entries))


def _entry(**file_fields) -> dict:
    return {"stage": "segmentation", "title": "t", "files": [{"name": "w.pth", "url": None, **file_fields}]}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_random_file_in_medsams_folder_is_caught_by_the_published_md5(empty_home, capsys):
    (empty_home / "medsam-vit-b").mkdir()
    (empty_home / "medsam-vit-b" / "medsam_vit_b.pth").write_bytes(PAYLOAD)
    code, out, _ = _cli(capsys, "models", "verify", "medsam-vit-b")
    assert code == 1 and "checksum-mismatch" in out
    assert models.recorded_checksums() == {}  # nothing recorded from a file found in the cache
    code, _, err = _cli(capsys, "models", "path", "medsam-vit-b")
    assert code == 2 and err.count("\n") == 1 and "MD5" in err


def test_a_file_found_in_the_cache_without_any_checksum_is_not_trusted(empty_home, capsys):
    _registry(empty_home, {"m": _entry()})
    (empty_home / "m").mkdir()
    (empty_home / "m" / "w.pth").write_bytes(PAYLOAD)
    code, out, _ = _cli(capsys, "models", "verify", "m")
    assert code == 1 and "unverified" in out
    code, _, err = _cli(capsys, "models", "path", "m")
    assert code == 2 and err.count("\n") == 1 and "logsam models import m FILE" in err
    assert models.recorded_checksums() == {}
    good = empty_home.parent / "good.pth"
    good.write_bytes(PAYLOAD)
    code, _, _ = _cli(capsys, "models", "import", "m", str(good))  # an explicit import vouches for it
    assert code == 0 and models.model_path("m") == empty_home / "m" / "w.pth"


def test_import_replaces_a_recorded_checksum_only_after_confirmation(empty_home, capsys, monkeypatch):
    _registry(empty_home, {"m": _entry()})
    first, second = empty_home.parent / "first.pth", empty_home.parent / "second.pth"
    first.write_bytes(PAYLOAD)
    second.write_bytes(PAYLOAD[::-1])
    assert _cli(capsys, "models", "import", "m", str(first))[0] == 0
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = _cli(capsys, "models", "import", "m", str(second))
    assert code == 2 and err.count("\n") == 1 and "--replace-recorded" in err
    assert (empty_home / "m" / "w.pth").read_bytes() == PAYLOAD
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert _cli(capsys, "models", "import", "m", str(second))[0] == 1
    assert (empty_home / "m" / "w.pth").read_bytes() == PAYLOAD
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert _cli(capsys, "models", "import", "m", str(second))[0] == 0
    assert models.recorded_checksums()["m/w.pth"]["sha256"] == hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    assert _cli(capsys, "models", "import", "m", str(first), "--replace-recorded")[0] == 0
    assert models.model_path("m").read_bytes() == PAYLOAD


@pytest.mark.parametrize("bad_id", ["../victim", "/tmp/victim", "a/b", "..", ".hidden"])
def test_registry_ids_cannot_reach_outside_the_cache(empty_home, capsys, bad_id, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    _registry(empty_home, {bad_id.replace("/tmp/victim", str(victim)): _entry()})
    for argv in (["models", "clear", "--yes"], ["models", "import", bad_id, str(victim / "precious.txt")]):
        code, _, err = _cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Invalid registry entry" in err, err
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_model_folder_linked_outside_the_cache_is_refused(empty_home, capsys, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    _registry(empty_home, {"m": _entry()})
    (empty_home / "m").symlink_to(victim)
    source = tmp_path / "w.pth"
    source.write_bytes(PAYLOAD)
    code, _, err = _cli(capsys, "models", "import", "m", str(source))
    assert code == 2 and "outside the model cache" in err
    code, _, err = _cli(capsys, "models", "clear", "--yes")
    assert code == 2 and "outside the model cache" in err
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]


def test_a_failed_import_leaves_no_empty_model_folder(empty_home, capsys):
    wrong = empty_home.parent / "wrong.pth"
    wrong.write_bytes(PAYLOAD)
    code, _, err = _cli(capsys, "models", "import", "whisper-tiny", str(wrong))
    assert code == 2 and "nothing was installed" in err
    assert list(empty_home.iterdir()) == []


@pytest.mark.parametrize("argv", [["models", "import", "logsam-lora-dino", "{file}"], ["models", "clear", "--yes"],
                                  ["transcribe", "{file}"], ["models", "list"]])
def test_logsam_home_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch, argv):
    home = tmp_path / "home"
    home.write_bytes(PAYLOAD)
    monkeypatch.setenv("LOGSAM_HOME", str(home))
    code, _, err = _cli(capsys, *[a.replace("{file}", str(home)) for a in argv])
    assert code == 2 and err.count("\n") == 1 and "is a file, not a folder" in err, err


def test_read_only_logsam_home_is_one_line(tmp_path, capsys, monkeypatch):
    source = tmp_path / "w.pth"
    source.write_bytes(PAYLOAD)
    if IS_ROOT:
        home = Path("/sys")  # root ignores permission bits; sysfs refuses new files even to root
    else:
        home = tmp_path / "home"
        home.mkdir()
        (home / "logsam-lora-dino").mkdir()
        (home / "logsam-lora-dino" / "x").write_bytes(b"x")
        os.chmod(home / "logsam-lora-dino", 0o555)
        os.chmod(home, 0o555)
    monkeypatch.setenv("LOGSAM_HOME", str(home))
    code, _, err = _cli(capsys, "models", "import", "logsam-lora-dino", str(source))
    assert code == 2 and err.count("\n") == 1 and "Cannot write to the model cache" in err, err
    code, _, err = _cli(capsys, "models", "download", "whisper-tiny")  # fails before any network use
    assert code == 2 and err.count("\n") == 1 and "Cannot write to the model cache" in err, err
    if not IS_ROOT:
        code, _, err = _cli(capsys, "models", "clear", "--yes")
        assert code == 2 and err.count("\n") == 1 and "Cannot write to the model cache" in err, err
        os.chmod(home, 0o755)
        os.chmod(home / "logsam-lora-dino", 0o755)


# ------------------------------------------------------------------------------ audio


def test_clipped_dictation_is_a_warning_in_the_report(tmp_path, capsys, box_double, monkeypatch):
    from LoGSAMLib.audio import write_wav
    from LoGSAMLib.pipeline import Pipeline
    from LoGSAMLib.types import Transcript

    t = np.arange(16000 * 2) / 16000
    clipped = np.clip(3.0 * np.sin(2 * np.pi * 220 * t), -1, 1).astype(np.float32)  # ~60 % at full scale
    wav = write_wav(tmp_path / "dictation.wav", clipped)
    heard = []

    def transcribe(self, audio, progress=None, cancel=None):
        heard.append(np.asarray(audio).size)
        return Transcript(text="Enhancing mass, consistent with glioma.", language="en")

    monkeypatch.setattr(Pipeline, "transcribe", transcribe)
    monkeypatch.setattr(Pipeline, "segment", lambda self, volume, classes, findings, progress=None:
                        self.segment_box(volume, ((22.0, 22.0, 2.0), (42.0, 42.0, 6.0)), classes[0]))
    source = _input(tmp_path)
    code = main(["run", str(source), "--audio", str(wav), "--device", "cpu", "--segmenter", "litemedsam",
                 "-o", str(tmp_path / "out" / "seg.nii.gz")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert heard == [clipped.size]
    report = json.loads((tmp_path / "out" / "seg.report.json").read_text())
    assert any("clipped" in w for w in report["warnings"]) and "warning: The dictation audio is clipped" in out


def test_level_warnings_quiet_and_clean():
    from LoGSAMLib.audio import level_warnings

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    assert level_warnings(0.3 * tone) == []
    quiet = level_warnings(0.005 * tone)
    assert len(quiet) == 1 and "very quiet" in quiet[0]
