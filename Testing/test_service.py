"""`logsam serve` for real: a uvicorn server in a subprocess on 127.0.0.1 with the tiny models, and the
stdlib client (`EngineClient`, `logsam ... --server`) talking to it."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LoGSAMLib.cli import main
from LoGSAMLib.errors import Cancelled, InputError, ServerConnectionError, ServerError, VersionMismatchError
from LoGSAMLib.service import API_VERSION
from LoGSAMLib.service.client import EngineClient
from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
from LoGSAMLib.volume import write_volume

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    token: str
    work_dir: Path
    ready: Path
    log: Path

    def client(self, **kwargs) -> EngineClient:
        return EngineClient(self.url, self.token, **kwargs)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(30)


def start_server(folder: Path, home: Path, *extra: str) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    work, ready, token_file = folder / "work", folder / "ready.json", folder / "token"
    work.mkdir(exist_ok=True)
    ready.unlink(missing_ok=True)  # a killed server's
    env = {**os.environ, "LOGSAM_HOME": str(home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = folder / "server.log"
    with open(log, "w") as handle:  # a file, not a pipe nobody reads, which would block the server once full
        process = subprocess.Popen(
            [sys.executable, "-m", "LoGSAMLib.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--device", "cpu",
             "--token-file", str(token_file), "--ready-file", str(ready), "--work-dir", str(work), *extra],
            env=env, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server did not start: {log.read_text()}")
        time.sleep(0.1)
    info = json.loads(ready.read_text())
    assert info["pid"] == process.pid and info["api_version"] == API_VERSION
    return Server(process, info["url"], token_file.read_text().strip(), work, ready, log)


@pytest.fixture(scope="module")
def server(tiny_models_dir, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("server"), tiny_models_dir, "--concurrency", "2",
                       "--max-upload-mb", "1", "--max-decompressed-mb", "8", "--verbose")  # every log line
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    directory = tmp_path_factory.mktemp("service-phantom")
    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=14.0, side="left", region="frontal")],
                           spacing=(6.0, 6.0, 8.0), seed=2)
    path = directory / "t1.nii.gz"
    write_volume(phantom.volume, path)
    return path, phantom


def _box_args(phantom, pad_mm: float = 0.0) -> list[str]:
    """A RAS box around the lesion, as `logsam segment --box-ras` takes it."""
    mask = phantom.mask.array > 0
    kji = np.array(np.nonzero(mask), dtype=float)
    ras = (phantom.volume.ijk_to_ras_matrix() @ np.vstack([kji[::-1], np.ones(kji.shape[1])]))[:3]
    low, high = ras.min(axis=1) - pad_mm, ras.max(axis=1) + pad_mm
    return [f"{v:.3f}" for v in (*low, *high)]


def _raw(server: Server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null"), dict(response.getheaders())
    finally:
        connection.close()


def _leftovers(server: Server, wait_s: float = 3.0) -> list[str]:
    """Files left in the server's job and upload folders (a fetched job's folder goes just after the response)."""
    deadline = time.monotonic() + wait_s
    while True:
        files = [name for _, _, names in os.walk(server.work_dir) for name in names]
        if not files or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


# ------------------------------------------------------------------------------ round trip


def test_run_round_trip_gives_the_in_process_label_map_and_report(server, phantom_file, tiny_home, tmp_path):
    path, phantom = phantom_file
    dictation = "Enhancing left frontal mass, consistent with glioblastoma. No meningioma."
    common = ["run", str(path), "--text", dictation, "--segmenter", "medsam", "--device", "cpu",
              "--detector-size", "128"]
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main([*common, "-o", str(local / "s.nii.gz"), "-o", str(local / "s.seg.nrrd")]) == 0
    assert main([*common, "-o", str(remote / "s.nii.gz"), "-o", str(remote / "s.seg.nrrd"),
                 "--server", server.url, "--token", server.token]) == 0

    a, b = (sitk.ReadImage(str(d / "s.nii.gz")) for d in (local, remote))
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert (a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (b.GetSpacing(), b.GetOrigin(), b.GetDirection())
    import slicerio

    seg_a, seg_b = (slicerio.read_segmentation(str(d / "s.seg.nrrd")) for d in (local, remote))
    assert np.array_equal(seg_a["voxels"], seg_b["voxels"])
    assert [s["name"] for s in seg_a["segments"]] == [s["name"] for s in seg_b["segments"]]
    ra, rb = (json.loads((d / "s.report.json").read_text()) for d in (local, remote))
    assert rb["outputs"] == [str(remote / "s.nii.gz"), str(remote / "s.seg.nrrd")]
    assert rb["input"] == str(path)
    for report in (ra, rb):
        report.pop("timings_s"), report.pop("outputs")
    assert ra == rb
    assert ra["findings"]["affirmed"] == ["glioma"] and ra["search"]["glioma"]["detector_slices"] > 0
    assert _leftovers(server) == []  # fetched once: the job's folder is gone
    health = server.client().health()
    assert any(m.startswith("detector:") for m in health["loaded_models"])  # and the models stay loaded
    log = server.log.read_text()
    assert "Application startup complete" in log  # the log is there (verbose), but holds no patient data:
    assert path.name not in log and "glioblastoma" not in log and "left frontal" not in log


def test_run_with_audio_uploads_it_and_keeps_the_transcript_when_nothing_is_affirmed(server, phantom_file, tiny_home,
                                                                                    tmp_path):
    from LoGSAMLib.testing.speech import speak

    path, _ = phantom_file
    audio = tmp_path / "dictation.wav"
    speak("Kein Hinweis auf einen Tumor.", audio, voice="de")
    common = ["run", str(path), "--audio", str(audio), "--whisper-model", "whisper-base", "--asr-backend", "openai",
              "--language", "de", "--device", "cpu"]
    assert main([*common, "-o", str(tmp_path / "local.nii.gz")]) == 3
    assert main([*common, "-o", str(tmp_path / "remote.nii.gz"), "--server", server.url, "--token", server.token]) == 3
    # The tiny Whisper's random text names no class: no segmentation, the transcript is kept, as locally.
    assert not (tmp_path / "local.nii.gz").exists() and not (tmp_path / "remote.nii.gz").exists()
    local, remote = (json.loads((tmp_path / f"{n}.report.json").read_text()) for n in ("local", "remote"))
    assert remote["transcript"]["language"] == "de" and remote["outputs"] == []
    for report in (local, remote):
        report["transcript"].pop("timings")
    assert remote == local
    assert _leftovers(server) == []
    transcript = server.client().transcribe(audio, "de", options={"whisper_model": "whisper-base",
                                                                  "asr_backend": "openai"})
    assert transcript["text"] == local["transcript"]["text"] and transcript["language"] == "de"
    heard = remote["transcript"]["text"].strip()
    assert len(heard) < 20 or heard not in server.log.read_text()  # no transcript in the server's log


def test_extract_models_and_a_client_that_needs_only_the_standard_library(server):
    client = server.client()
    findings = client.extract("Left frontal glioblastoma. No meningioma.")
    assert findings["affirmed"] == ["glioma"] and findings["negated"] == ["meningioma"]
    assert findings["classes"]["glioma"]["side"] == "left"
    models = {m["id"]: m for m in client.models()}
    assert models["medsam-vit-b"]["cached"] and not all(m["cached"] for m in models.values())
    assert {r["status"] for r in client.verify_models("medsam-vit-b")} == {"ok"}
    probe = ("import sys, LoGSAMLib.service.client; "
             "print(sorted(m for m in ('torch', 'numpy', 'fastapi', 'SimpleITK', 'uvicorn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


def test_early_detection_job_serves_the_run_queued_after_it(server, tmp_path):
    small = make_phantom([LesionSpec(kind="glioma", radius_mm=14.0, side="left", region="frontal")],
                         spacing=(10.0, 10.0, 14.0), seed=4)  # a volume no other test searched
    path = write_volume(small.volume, tmp_path / "small.nii.gz")
    client = server.client()
    dictation = "Enhancing left frontal glioblastoma."
    options = {"segmenter": "medsam", "detector_size": 128}
    early = client.submit_detect(path, text=dictation, options=options)
    assert client.wait(early)["exit_code"] == 0
    run = client.submit_run(path, text=dictation, options=options)  # on either of the two workers
    client.wait(run)
    report = client.fetch(run, [tmp_path / "s.nii.gz"], tmp_path / "s.json")
    assert report["search"]["glioma"]["searched_earlier"] is True
    assert report["search"]["glioma"]["detector_slices"] > 0
    assert _leftovers(server) == []


# ------------------------------------------------------------------------------ security


def test_missing_or_wrong_token_gets_401_and_the_token_file_is_private(server):
    assert _raw(server, "GET", "/version")[0] == 200  # only the version is public
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {server.token}"}):
        status, body, _ = _raw(server, "GET", "/v1/health", headers=headers)
        assert status == 401 and "--print-token" in body["detail"]
    status, _, _ = _raw(server, "POST", "/v1/uploads?kind=volume&suffix=.nii.gz", b"x" * 10,
                        {"Authorization": "Bearer nope"})
    assert status == 401
    assert _raw(server, "GET", "/v1/health", headers={"Authorization": f"Bearer {server.token}"})[0] == 200
    with pytest.raises(ServerError, match="401"):
        EngineClient(server.url, "wrong-token-wrong-token").health()
    token_file = server.ready.parent / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    job_folders = [p for p in server.work_dir.rglob("*") if p.is_dir()]
    assert job_folders and all(p.stat().st_mode & 0o777 == 0o700 for p in job_folders)


def test_oversized_upload_gets_413_before_it_is_stored(server, tmp_path):
    auth = {"Authorization": f"Bearer {server.token}"}
    too_big = 2 * 1024 * 1024  # the server takes 1 MB
    status, body, _ = _raw(server, "POST", "/v1/uploads?kind=volume&suffix=.nii.gz", b"\0" * too_big,
                           {**auth, "Content-Type": "application/octet-stream"})
    assert status == 413 and "1.0 MB" in body["detail"]
    status, _, _ = _raw(server, "POST", "/v1/extract", json.dumps({"text": "x" * too_big}).encode(),
                        {**auth, "Content-Type": "application/json"})
    assert status == 413  # a JSON body is read whole, so it has a limit too
    big = tmp_path / "big.nii.gz"
    big.write_bytes(os.urandom(too_big))
    with pytest.raises(InputError, match="at most 1.0 MB"):
        server.client().submit_segment(big, classes=["glioma"])
    assert _leftovers(server) == []


def _nifti_header(shape: tuple[int, ...], bitpix: int = 8, datatype: int = 2) -> bytes:
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(shape), *shape, *([1] * (7 - len(shape))))
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    return bytes(header)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_truncated_and_bomb_volumes_get_a_clear_4xx_without_filling_memory(server, phantom_file, tmp_path):
    client = server.client()
    path, _ = phantom_file
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        client.submit_segment(truncated, classes=["glioma"])

    # A header claiming 2 GB of pixels: refused from the header alone.
    claims_a_lot = tmp_path / "huge.nii.gz"
    claims_a_lot.write_bytes(gzip.compress(_nifti_header((1024, 1024, 1024), bitpix=16, datatype=4)))
    with pytest.raises(InputError, match="once decompressed"):
        client.submit_segment(claims_a_lot, classes=["glioma"])

    # A gzip bomb: a tiny header, then 512 MB of zeros that compress to about 0.5 MB.
    bomb = tmp_path / "bomb.nii.gz"
    before = _peak_rss_mb(server.process.pid)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(bomb, "wb") as handle:
        handle.write(compressor.compress(_nifti_header((8, 8, 8))))
        zeros = bytes(1024 * 1024)
        for _ in range(512):
            handle.write(compressor.compress(zeros))
        handle.write(compressor.flush())
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(InputError, match="more data than its header says"):
        client.submit_segment(bomb, classes=["glioma"])
    assert _peak_rss_mb(server.process.pid) - before < 64  # streamed with a cap, never held
    assert _leftovers(server) == []


def test_non_loopback_bind_needs_tls_or_insecure(tmp_path, capsys):
    code = main(["serve", "--host", "0.0.0.0", "--port", "0", "--token-file", str(tmp_path / "t")])
    assert code == 2
    assert "--insecure" in capsys.readouterr().err
    assert main(["serve", "--print-token", "--token-file", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (tmp_path / "t").read_text().strip() and len(printed) >= 32


# ------------------------------------------------------------------------------ jobs


def test_cancel_stops_a_running_job_within_seconds(server, phantom_file):
    path, phantom = phantom_file
    client = server.client()
    # Box mode over the whole head: many slices, so it is still running when cancelled.
    low = phantom.volume.ijk_to_ras_matrix() @ np.array([0, 0, 0, 1.0])
    high = phantom.volume.ijk_to_ras_matrix() @ np.array([*(np.array(phantom.volume.shape_ijk) - 1), 1.0])
    box_lps = ((-low[0], -low[1], low[2]), (-high[0], -high[1], high[2]))
    job = client.submit_segment(path, box_lps=box_lps, label="glioma", options={"segmenter": "medsam"})
    deadline = time.monotonic() + 60
    while client.status(job)["stage"] != "segment":
        assert time.monotonic() < deadline, client.status(job)
        time.sleep(0.05)
    asked = time.monotonic()
    with pytest.raises(Cancelled):
        client.wait(job, cancel=lambda: True)
    assert time.monotonic() - asked < 5
    assert client.status(job)["state"] == "cancelled"
    assert _leftovers(server) == []  # a cancelled job's upload is deleted at once


def test_eight_concurrent_clients_each_get_their_own_result(server, phantom_file, tmp_path):
    path, phantom = phantom_file
    volume = phantom.volume
    shape = np.array(volume.shape_ijk)
    centre = shape // 2
    labels = ("glioma", "meningioma", "pituitary")
    results: dict[int, object] = {}

    def one(n: int) -> None:
        try:
            # Each client's box: one slice (its own), a different place and class.
            k = int(centre[2]) - 4 + n
            corner_a = volume.ijk_to_ras_matrix() @ np.array([centre[0] - 3, centre[1] - 3, k, 1.0])
            corner_b = volume.ijk_to_ras_matrix() @ np.array([centre[0] + 3, centre[1] + 3, k, 1.0])
            box = ((-corner_a[0], -corner_a[1], corner_a[2]), (-corner_b[0], -corner_b[1], corner_b[2]))
            client = server.client()
            job = client.submit_segment(path, box_lps=box, label=labels[n % 3], options={"segmenter": "medsam"})
            client.wait(job)
            out = tmp_path / f"c{n}.nii.gz"
            report = client.fetch(job, [out], tmp_path / f"c{n}.json")
            results[n] = (k, labels[n % 3], report, sitk.GetArrayFromImage(sitk.ReadImage(str(out))))
        except Exception as error:  # reported below
            results[n] = error

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 8 and not [r for r in results.values() if isinstance(r, Exception)], results
    for k, label, report, array in results.values():
        value = {"glioma": 1, "meningioma": 2, "pituitary": 3}[label]
        assert report["classes"] == [label]
        assert set(np.unique(array)) <= {0, value}
        assert set(np.flatnonzero(array.any(axis=(1, 2)))) <= {k}  # only its own slice
    assert _leftovers(server) == []


def test_version_mismatch_says_what_to_upgrade(server):
    class NewerClient(EngineClient):
        api_version = API_VERSION + 1

    class OlderClient(EngineClient):
        api_version = API_VERSION - 1

    with pytest.raises(VersionMismatchError, match="upgrade the server"):
        NewerClient(server.url, server.token).health()
    with pytest.raises(VersionMismatchError, match="upgrade the client"):
        OlderClient(server.url, server.token).health()
    # A client that skips the check is still refused, with the same advice.
    status, body, headers = _raw(server, "GET", "/v1/health",
                                 headers={"Authorization": f"Bearer {server.token}", "X-LoGSAM-API": "0"})
    assert status == 426 and "upgrade the client" in body["detail"]
    assert headers["x-logsam-api"] == str(API_VERSION)


# ------------------------------------------------------------------------------ server gone


def test_server_killed_mid_job_the_client_says_so_and_writes_nothing(tiny_models_dir, phantom_file, tmp_path,
                                                                      capsys):
    path, phantom = phantom_file
    srv = start_server(tmp_path / "srv", tiny_models_dir)
    outputs = tmp_path / "out"
    outputs.mkdir()
    codes: list[int] = []
    cli = threading.Thread(target=lambda: codes.append(main([
        "segment", str(path), "--box-ras", *_box_args(phantom, pad_mm=40.0), "--segmenter", "medsam",
        "-o", str(outputs / "s.nii.gz"), "-o", str(outputs / "s.seg.nrrd"), "--server", srv.url,
        "--token", srv.token])))
    cli.start()
    watcher = srv.client()
    deadline = time.monotonic() + 60
    while watcher.health()["jobs"]["running"] == 0:
        assert time.monotonic() < deadline and cli.is_alive(), codes
        time.sleep(0.05)
    srv.stop(signal.SIGKILL)
    cli.join(60)
    assert codes == [2]
    err = capsys.readouterr().err
    assert "Lost the LoGSAM server" in err and "nothing was written" in err
    assert list(outputs.iterdir()) == []
    # The killed server left its upload behind; the next server on that folder deletes it on start.
    assert _leftovers(srv, wait_s=0)
    again = start_server(tmp_path / "srv", tiny_models_dir)
    try:
        assert _leftovers(again, wait_s=0) == []
    finally:
        again.stop()


def test_sigterm_stops_the_server_cleanly_and_deletes_job_folders(tiny_models_dir, phantom_file, tmp_path):
    path, _ = phantom_file
    srv = start_server(tmp_path / "srv", tiny_models_dir)
    client = srv.client()
    job = client.submit_segment(path, classes=["glioma"], options={"segmenter": "medsam", "detector_size": 128})
    assert _leftovers(srv)  # the upload lies in its job folder
    assert srv.stop(signal.SIGTERM) == 0
    assert list(srv.work_dir.iterdir()) == [] and not srv.ready.exists()
    with pytest.raises(ServerConnectionError, match="Cannot reach"):
        client.status(job)


def test_https_with_a_self_signed_certificate(tiny_models_dir, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = start_server(tmp_path / "srv", tiny_models_dir, "--certfile", str(cert), "--keyfile", str(key))
    try:
        assert srv.url.startswith("https://")
        assert srv.client(cafile=cert).health()["status"] == "ok"
        with pytest.raises(ServerConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            srv.client().health()  # not trusted without the CA file
    finally:
        assert srv.stop() == 0


def test_finished_jobs_and_unused_uploads_expire_after_the_ttl(tmp_path):
    from LoGSAMLib.service.jobs import DONE, JobManager

    manager = JobManager(tmp_path, lambda job, state: "result", lambda: None, ttl_s=0.2, sweep_interval_s=0.05)
    try:
        upload_id, folder = manager.new_upload()
        (folder / "data.nii.gz").write_bytes(b"x")
        job = manager.create("segment", {}, {})
        deadline = time.monotonic() + 5
        while (manager.get(job.id) is not None or folder.exists() or job.folder.exists()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.state == DONE and manager.get(job.id) is None
        assert not job.folder.exists() and not folder.exists()
        with pytest.raises(KeyError):
            manager.take_upload(upload_id, tmp_path)
    finally:
        manager.shutdown()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_check_reads_the_size_from_each_header_and_refuses_a_cut_file(suffix, phantom_file, tmp_path):
    from LoGSAMLib.service.limits import UploadRejected, check_volume

    _, phantom = phantom_file
    path = write_volume(phantom.volume, tmp_path / f"v{suffix}")
    pixels = phantom.volume.array.size * phantom.volume.array.dtype.itemsize
    assert check_volume(path, suffix, max_bytes=pixels) == pixels
    with pytest.raises(UploadRejected) as too_small_a_cap:
        check_volume(path, suffix, max_bytes=pixels - 1)
    assert too_small_a_cap.value.status == 413
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: -max(64, path.stat().st_size // 3)])
    with pytest.raises(UploadRejected, match="damaged or truncated") as damaged:
        check_volume(cut, suffix, max_bytes=pixels)
    assert damaged.value.status == 400


def test_a_local_engine_stops_cleanly_when_its_parent_process_ends(tiny_models_dir, tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    srv = start_server(tmp_path / "srv", tiny_models_dir, "--parent-pid", str(parent.pid))
    assert srv.client().health()["status"] == "ok"
    parent.kill()
    parent.wait()
    assert srv.process.wait(30) == 0
    assert list(srv.work_dir.iterdir()) == [] and not srv.ready.exists()
