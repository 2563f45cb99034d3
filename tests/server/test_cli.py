"""The real `python -m server` process: start-up, a JSON client, graceful shutdown on SIGTERM."""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys

import aiohttp

from protocol import Frame, ProcessedFrame
from tests.server.wsclient import receive, send_json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else "server exited"
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
    raise TimeoutError("server did not come up")


async def test_server_process_serves_and_shuts_down_gracefully(frame_jpeg):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--server-port", str(port), "--execution-provider", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{port}", process)
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}") as ws:
            await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=5.5))
            reply = await receive(ws)
            assert isinstance(reply, ProcessedFrame) and reply.timestamp == 5.5
            process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=15)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in output, output


def test_help_explains_the_options():
    result = subprocess.run([sys.executable, "-m", "server", "--help"], capture_output=True, text=True, check=True)
    for option in ("--port", "--server-port", "--provider", "--execution-provider", "--max-batch", "--source",
                   "--frame-processor", "--execution-threads", "--log-level"):
        assert option in result.stdout


def test_unknown_processor_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "server", "--frame-processor", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr and "Traceback" not in result.stderr
