"""The real `python -m server` process: start-up, TLS, token reload, graceful shutdown."""
from __future__ import annotations

import signal
import ssl
import subprocess
import sys

import aiohttp
import pytest

from protocol import Frame, ProcessedFrame, Stats, StatsRequest
from server.tls import make_self_signed
from tests.server.wsclient import receive, send_json
from perf.spawn import spawned_server


async def test_server_process_serves_and_shuts_down_gracefully(frame_jpeg):
    async with spawned_server(["--execution-provider", "cpu"], log_level="INFO") as server:
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
            await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=5.5))
            reply = await receive(ws)
            assert isinstance(reply, ProcessedFrame) and reply.timestamp == 5.5
            server.process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=15)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        assert server.process.wait(timeout=20) == 0
        assert "Traceback" not in server.output(), server.output()


async def test_tls_and_token_reload_on_sighup(tmp_path, frame_jpeg):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key, ["localhost", "127.0.0.1"])
    tokens = tmp_path / "tokens"
    tokens.write_text("first-secret-token\n")
    trusted = ssl.create_default_context(cafile=str(cert))
    args = ["--certfile", str(cert), "--keyfile", str(key), "--token-file", str(tokens), "--frame-processor", "passthrough"]
    async with spawned_server(args, log_level="INFO", ssl_context=trusted) as server:
        assert server.ws_url.startswith("wss://")
        async with aiohttp.ClientSession() as http:
            url = f"{server.ws_url}?token=first-secret-token"
            async with http.ws_connect(url, ssl=trusted) as ws:
                await send_json(ws, StatsRequest())
                assert isinstance(await receive(ws), Stats)
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # verification is on by default
                await http.ws_connect(url)
            tokens.write_text("second-secret-token\n")
            server.process.send_signal(signal.SIGHUP)
            for _ in range(50):
                try:
                    await http.ws_connect(url, ssl=trusted)
                except aiohttp.WSServerHandshakeError as exc:
                    assert exc.status == 401
                    break
            else:
                pytest.fail("the old token still works after SIGHUP")
            async with http.ws_connect(f"{server.ws_url}?token=second-secret-token", ssl=trusted) as ws:
                await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=1.0))
                assert isinstance(await receive(ws), ProcessedFrame)
        server.stop()
        output = server.output()
    assert "secret-token" not in output, "tokens must never be logged"
    assert "/?" not in output and "GET /" in output  # access log lines, without query strings


async def test_listening_beyond_loopback_without_a_token_warns_loudly():
    async with spawned_server(["--frame-processor", "passthrough"], log_level="INFO", host="0.0.0.0") as server:
        server.stop()
        assert "WITHOUT authentication" in server.output()


def test_help_explains_the_options():
    result = subprocess.run([sys.executable, "-m", "server", "--help"], capture_output=True, text=True, check=True)
    for option in ("--port", "--server-port", "--provider", "--execution-provider", "--max-batch", "--source",
                   "--frame-processor", "--execution-threads", "--log-level", "--token", "--certfile",
                   "--allowed-origin", "--max-clients", "--idle-timeout", "--no-webrtc", "--ice-server"):
        assert option in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--frame-processor", "nope"], "invalid choice: 'nope'"),
    (["--provider", "warp-drive"], "execution provider 'warp-drive' is not available"),
    (["--certfile", "/nonexistent.pem", "--keyfile", "/nonexistent.key"], "does not exist"),
    (["--opacity", "7"], "opacity"),
    (["--ice-server", "turn:relay.example:3478", "alice"], "--ice-server: expected stun:HOST[:PORT] or turn:"),
    (["--ice-server", "relay.example:3478"], "--ice-server: expected"),
])
def test_bad_arguments_are_one_clear_line(args, message):
    result = subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_ice_servers_and_webrtc_switch_are_read():
    from server.cli import parse_config
    from server.config import IceServer
    config = parse_config(["--ice-server", "stun:stun.example:3478",
                           "--ice-server", "turn:relay.example:3478", "alice", "pw", "--no-webrtc"])
    assert config.ice_servers == (IceServer("stun:stun.example:3478"), IceServer("turn:relay.example:3478", "alice", "pw"))
    assert config.webrtc is False and parse_config([]).webrtc is True
