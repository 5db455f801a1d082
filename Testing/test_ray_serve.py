"""`logsam serve --ray`: the service's app on a real local Ray Serve with 2 engine replicas and the tiny
models, against the single-process server (a real uvicorn on 127.0.0.1) on the same requests."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LoGSAMLib.service import API_HEADER
from LoGSAMLib.service.client import EngineClient
from LoGSAMLib.service.settings import ServeSettings

TOKEN = "ray-serve-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_serve(tiny_models_dir):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'logsam[ray]')")
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'ray[serve]')")
    from LoGSAMLib.service import ray_serve as module

    patch = pytest.MonkeyPatch()
    patch.setenv("LOGSAM_HOME", str(tiny_models_dir))  # the replicas inherit it from the Ray instance
    patch.setenv("OMP_NUM_THREADS", "1")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - any failure to start means Ray cannot run here
        patch.undo()
        pytest.skip(f"a local Ray instance cannot start on this machine: {error}")
    try:
        url = module.deploy(ServeSettings(token=TOKEN, device="cpu"), "127.0.0.1", _free_port(), replicas=2)
        yield url
    finally:
        module.undeploy()
        patch.undo()


@pytest.fixture(scope="module")
def single_process_server(tiny_models_dir):
    """The plain `logsam serve` app on uvicorn, in a thread of this process."""
    import uvicorn

    from LoGSAMLib.service.app import create_app

    patch = pytest.MonkeyPatch()
    patch.setenv("LOGSAM_HOME", str(tiny_models_dir))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ServeSettings(token=TOKEN, device="cpu")), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    patch.undo()


@pytest.fixture(scope="module")
def slab(tmp_path_factory) -> Path:
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.volume import write_volume

    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=14.0, side="left", region="frontal")],
                           spacing=(8.0, 8.0, 8.0), size=(23, 27, 2), seed=3)
    return write_volume(phantom.volume, tmp_path_factory.mktemp("serve") / "slab.nii.gz")


REQUESTS = [  # (kind, arguments): boxes in LPS mm around the slab's centre, different places and classes
    ("segment", {"box_lps": ((-30.0, -10.0, 0.0), (10.0, 30.0, 20.0)), "label": "glioma"}),
    ("segment", {"box_lps": ((-10.0, -30.0, -10.0), (30.0, 0.0, 30.0)), "label": "meningioma"}),
    ("segment", {"box_lps": ((0.0, 0.0, -20.0), (40.0, 40.0, 40.0)), "label": "pituitary"}),
    ("run", {"text": "Enhancing mass in the left frontal lobe, consistent with glioma."}),
]
OPTIONS = {"segmenter": "medsam", "detector_size": 128}


def _serve_all(url: str, volume: Path, folder: Path) -> dict[int, object]:
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[int, object] = {}

    def one(n: int) -> None:
        kind, arguments = REQUESTS[n]
        try:
            client = EngineClient(url, TOKEN)
            submit = client.submit_segment if kind == "segment" else client.submit_run
            job = submit(volume, options=OPTIONS, **arguments)
            client.wait(job)
            out = folder / f"r{n}.nii.gz"
            report = client.fetch(job, [out], None)
            results[n] = (report, sitk.GetArrayFromImage(sitk.ReadImage(str(out))))
        except Exception as error:  # reported by the assertion below
            results[n] = error

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(REQUESTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    return results


def _stable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("timings_s", "outputs")}


def test_two_replicas_serve_concurrent_requests_like_the_single_process_server(ray_serve, single_process_server,
                                                                                slab, tmp_path):
    from ray import serve

    on_ray = _serve_all(ray_serve, slab, tmp_path / "ray")
    single = _serve_all(single_process_server, slab, tmp_path / "single")
    assert not [r for r in on_ray.values() if isinstance(r, Exception)], on_ray
    assert not [r for r in single.values() if isinstance(r, Exception)], single
    for n in range(len(REQUESTS)):
        (ray_report, ray_labels), (report, labels) = on_ray[n], single[n]
        np.testing.assert_array_equal(ray_labels, labels)
        assert _stable(ray_report) == _stable(report)
    assert on_ray[3][0]["findings"]["affirmed"] == ["glioma"]
    engine = serve.status().applications["logsam"].deployments["LoGSAMEngine"]
    assert engine.replica_states.get("RUNNING") == 2


def test_ray_serve_keeps_the_token_and_the_version_check(ray_serve):
    host, port = ray_serve.removeprefix("http://").split(":")

    def get(path: str, headers: dict) -> int:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path, headers=headers)
        status = connection.getresponse().status
        connection.close()
        return status

    assert get("/v1/health", {}) == 401
    assert get("/v1/health", {"Authorization": f"Bearer {TOKEN}"}) == 200
    assert get("/v1/health", {"Authorization": f"Bearer {TOKEN}", API_HEADER: "999"}) == 426
    assert EngineClient(ray_serve, TOKEN).check_version()["api_version"]


def test_serve_ray_refuses_what_ray_serve_cannot_do_before_starting_ray(tmp_path, capsys):
    from LoGSAMLib.cli import main

    token = ["--token-file", str(tmp_path / "token")]
    assert main(["serve", "--ray", "--port", "0", *token]) == 2
    assert "fixed --port" in capsys.readouterr().err
    (tmp_path / "c.pem").write_text("x")
    assert main(["serve", "--ray", "--certfile", str(tmp_path / "c.pem"), "--keyfile", str(tmp_path / "c.pem"),
                 *token]) == 2
    assert "TLS proxy" in capsys.readouterr().err
