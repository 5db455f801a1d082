"""`logsam batch` for real: tiny models, small MNI152 phantom slabs, a real local Ray instance.

One cohort serves every test: 8 cases that work (text, prompt, two classes, a negated dictation,
spoken audio) and 2 that cannot (a file that is no image, a silent recording). Locally the batch
is interrupted by a real SIGINT after 3 cases and resumed; on Ray (2 actors) one actor is killed
with SIGKILL when it starts a given case. Both must give the same files.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from LoGSAMLib.batch.case import KILL_ENV
from LoGSAMLib.batch.runner import INTERRUPT_ENV
from LoGSAMLib.cli import main

GOOD = ["c0", "c1", "c2", "c3", "c4", "two_classes", "negated", "spoken"]
BAD = {"bad_volume": "Cannot read", "silent": "No speech"}
OPTIONS = ["--device", "cpu", "--segmenter", "medsam", "--detector-size", "128",
           "--whisper-model", "whisper-base", "--asr-backend", "openai", "--language", "en"]


def _slab(seed: int, kind: str = "glioma"):
    """Two 8 mm axial slices through the head, with a lesion planted where the slab is."""
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom

    probe = make_phantom([], spacing=(8.0, 8.0, 8.0), size=(23, 27, 2), noise=0.0)
    centre = probe.volume.ijk_to_lps_matrix() @ np.array([11.0, 13.0, 0.5, 1.0])
    centre[0] += 30.0 if kind == "glioma" else -30.0  # LPS x > 0 is the patient's left
    return make_phantom([LesionSpec(kind=kind, radius_mm=14.0, center_lps=tuple(centre[:3]))],
                        spacing=(8.0, 8.0, 8.0), size=(23, 27, 2), seed=seed)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from LoGSAMLib.audio import write_wav
    from LoGSAMLib.testing.phantoms import write_phantom
    from LoGSAMLib.testing.speech import speak

    folder = tmp_path_factory.mktemp("cohort")
    rows = []
    for n in range(5):
        image, mask = write_phantom(_slab(n), folder, stem=f"subject{n}")
        source = {"text": "Enhancing mass in the left frontal lobe, consistent with glioma."} if n % 2 else \
            {"prompt": "glioma"}
        rows.append({"case": f"c{n}", "volume": image.name, "ground_truth": mask.name, **source})
    image, mask = write_phantom(_slab(7, "meningioma"), folder, stem="subject7")
    rows.append({"case": "two_classes", "volume": image.name, "ground_truth": mask.name,
                 "prompt": "glioma+meningioma", "plane": "axial"})
    rows.append({"case": "negated", "volume": "subject0.nii.gz", "text": "No evidence of glioma or meningioma."})
    speak("Enhancing mass in the left frontal lobe, consistent with glioma.", folder / "dictation.wav")
    rows.append({"case": "spoken", "volume": "subject1.nii.gz", "audio": "dictation.wav"})
    (folder / "broken.nii.gz").write_bytes(b"this is not an image")
    rows.append({"case": "bad_volume", "volume": "broken.nii.gz", "prompt": "glioma"})
    write_wav(folder / "silence.wav", np.zeros(16000 * 3, np.float32), 16000)
    rows.append({"case": "silent", "volume": "subject2.nii.gz", "audio": "silence.wav"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "manifest.jsonl"


def _summary(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "summary.csv", newline="") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("timings_s", "timings", "outputs",
                                                                                "outputs_sha256")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def local_run(cohort, tiny_models_dir, tmp_path_factory):
    """The local batch: interrupted by a real SIGINT after 3 cases, then resumed by the same command."""
    import torch

    out = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray actor (1 CPU): the same arithmetic, so the same bytes
    mp = pytest.MonkeyPatch()
    mp.setenv("LOGSAM_HOME", str(tiny_models_dir))
    mp.setenv(INTERRUPT_ENV, "3")
    try:
        first_code = main(["batch", str(cohort), "-o", str(out), *OPTIONS])
        first = _summary(out)
        stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        mp.delenv(INTERRUPT_ENV)
        second_code = main(["batch", str(cohort), "-o", str(out), *OPTIONS])
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return out, first_code, first, stamps, second_code, _summary(out)


def test_an_interrupted_batch_keeps_what_finished_and_the_rerun_does_only_the_rest(local_run):
    out, first_code, first, stamps, second_code, second = local_run
    assert first_code == 130
    finished = [c for c, row in first.items() if row["status"] != "not_run"]
    assert finished == GOOD[:3]  # manifest order, one case at a time
    assert all(row["status"] == "not_run" and not row["this_run"] == "1" for c, row in first.items()
               if c not in finished)
    assert "c3.nii.gz" not in stamps and "c3.report.json" not in stamps  # as the first run left the folder
    assert not [name for name in stamps if ".part" in name]  # no temporary file left behind
    assert second_code == 1  # two cases fail
    assert {c for c, row in second.items() if row["this_run"] == "0"} == set(finished)
    for case in finished:  # kept, not rewritten
        assert (out / f"{case}.report.json").stat().st_mtime_ns == stamps[f"{case}.report.json"]
    assert {c for c, row in second.items() if row["this_run"] == "1"} == set(GOOD[3:]) | set(BAD)


def test_each_case_gets_the_outputs_of_logsam_run_and_its_row(local_run):
    out, *_, rows = local_run
    for case in GOOD:
        assert rows[case]["status"] in ("done", "no_finding"), rows[case]
    assert rows["negated"]["status"] == "no_finding" and not (out / "negated.nii.gz").exists()
    report = json.loads((out / "negated.report.json").read_text())
    assert report["findings"]["negated"] == ["glioma", "meningioma"] and report["outputs"] == []
    assert rows["two_classes"]["affirmed"] == "glioma meningioma"
    spoken = json.loads((out / "spoken.report.json").read_text())
    assert spoken["transcript"]["language"] == "en"  # the tiny Whisper's text is random, but it ran
    import SimpleITK as sitk

    for case in ("c0", "c1", "two_classes"):
        row = rows[case]
        assert int(row["detector_calls"]) > 0 and row["segmented_slices"]
        image = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        assert image.GetSize() == (23, 27, 2)
        labels = sitk.GetArrayFromImage(image)
        volume_ml = float((labels == 1).sum()) * 8 ** 3 / 1000
        assert float(row["glioma_ml"]) == pytest.approx(volume_ml, rel=1e-3)
        report = json.loads((out / f"{case}.report.json").read_text())
        assert report["batch"]["outputs_sha256"] == {str(out / f"{case}.nii.gz"): _digest(out / f"{case}.nii.gz")}
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(Path(report["input"]).with_name(
            Path(report["input"]).name.replace(".nii.gz", "_mask.nii.gz")))))
        expected = 2 * ((labels > 0) & (truth > 0)).sum() / ((labels > 0).sum() + (truth > 0).sum())
        assert float(row["dice"]) == pytest.approx(expected, abs=1e-6)
    with open(out / "evaluation_summary.csv", newline="") as handle:
        total = {r["class"]: r for r in csv.DictReader(handle)}["all"]
    assert int(total["n"]) == 6  # the cases with ground truth that ran


def test_a_corrupt_case_fails_alone_with_its_message(local_run):
    *_, rows = local_run
    for case, words in BAD.items():
        assert rows[case]["status"] == "failed" and words in rows[case]["error"], rows[case]
    assert sum(row["status"] == "failed" for row in rows.values()) == len(BAD)


def test_a_damaged_output_is_redone_on_the_next_run(local_run, cohort, tiny_home, one_torch_thread):
    out = local_run[0]
    target = out / "c4.nii.gz"
    original = target.read_bytes()
    try:
        target.write_bytes(original[:-10])
        assert main(["batch", str(cohort), "-o", str(out), *OPTIONS]) == 1
        rows = _summary(out)
        assert rows["c4"]["this_run"] == "1" and rows["c4"]["status"] == "done"
        assert {c for c, r in rows.items() if r["this_run"] == "1"} == {"c4", *BAD}
        assert target.read_bytes() == original  # the same case gives the same file again
    finally:
        target.write_bytes(original)


# ----------------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'logsam[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - any failure to start means Ray cannot run here
        pytest.skip(f"a local Ray instance cannot start on this machine: {error}")
    yield ray
    ray.shutdown()


def test_ray_batch_with_a_killed_worker_gives_the_local_outputs(ray_instance, local_run, cohort, tiny_models_dir,
                                                                 tmp_path, monkeypatch):
    local = local_run[0]
    out = tmp_path / "ray"
    monkeypatch.setenv("LOGSAM_HOME", str(tiny_models_dir))
    monkeypatch.setenv(KILL_ENV, "c2")  # that actor SIGKILLs itself when it starts c2 the first time
    assert main(["batch", str(cohort), "-o", str(out), "--ray", "--workers", "2", *OPTIONS]) == 1
    rows = _summary(out)
    assert rows["c2"]["status"] == "done" and rows["c2"]["attempts"] == "2"
    assert {c for c, r in rows.items() if r["attempts"] != "1"} == {"c2"}
    local_rows = _summary(local)
    for case in GOOD:
        assert rows[case]["status"] == local_rows[case]["status"]
        if rows[case]["status"] == "done":
            assert _digest(out / f"{case}.nii.gz") == _digest(local / f"{case}.nii.gz"), case
        ray_report = json.loads((out / f"{case}.report.json").read_text())
        local_report = json.loads((local / f"{case}.report.json").read_text())
        assert _without_timings(ray_report) == _without_timings(local_report), case
    for case, words in BAD.items():
        assert rows[case]["status"] == "failed" and words in rows[case]["error"]


# ------------------------------------------------------------------------------- manifest


def test_manifest_rows_resolve_paths_and_bad_rows_get_one_line(tmp_path):
    from LoGSAMLib.batch.manifest import read_manifest
    from LoGSAMLib.errors import InputError

    (tmp_path / "m.csv").write_text("case,volume,text,prompt,plane\n"
                                    "a,sub/a.nii.gz,\"Left frontal glioma, enhancing.\",,\n"
                                    ",sub/b.nii.gz,,Glioma+pituitary,Coronal\n")
    a, b = read_manifest(tmp_path / "m.csv")
    assert a.case == "a" and a.volume == str(tmp_path / "sub" / "a.nii.gz") and a.text.endswith("enhancing.")
    assert b.case == "b" and b.prompt == ("glioma", "pituitary") and b.plane == "coronal"
    (tmp_path / "m.jsonl").write_text('{"volume": "/data/x.nii.gz", "prompt": ["meningioma"]}\n\n')
    assert read_manifest(tmp_path / "m.jsonl")[0].prompt == ("meningioma",)
    bad = {
        "case,volume,text,prompt\nx,a.nii.gz,text,glioma\n": "row 2: give exactly one of",
        "volume,prompt\na.nii.gz,astrocytoma\n": "unknown prompt class 'astrocytoma'",
        "volume,prompt\na.nii.gz,glioma\nsub/a.nii.gz,glioma\n": "also on row 2",
        "volume,prompt,colour\na.nii.gz,glioma,red\n": "unknown column 'colour'",
        "case,volume,prompt\n../up,a.nii.gz,glioma\n": "cannot name files",
        "image,prompt\na.nii.gz,glioma\n": "'volume' column",
    }
    for text, words in bad.items():
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(InputError, match=words.replace("(", r"\(")) as error:
            read_manifest(tmp_path / "bad.csv")
        assert "\n" not in str(error.value)
