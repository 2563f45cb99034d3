"""Run the real `python -m server` as a child process on a free 127.0.0.1 port."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen
    port: int
    log_path: Path
    scheme: str = "http"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.scheme == 'https' else 'ws'}://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


async def wait_until_up(server: ServerProcess, ssl_context: ssl.SSLContext | None, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            assert server.process.poll() is None, f"server exited:\n{server.output()}"
            try:
                async with http.get(f"{server.http_url}/healthz", ssl=ssl_context or False) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
    raise TimeoutError(f"server did not come up:\n{server.output()}")


@contextlib.asynccontextmanager
async def running_server(*args: str, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                         port: int | None = None) -> AsyncIterator[ServerProcess]:
    port = port or free_port()
    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", host, "--port", str(port), *args],
        stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    server = ServerProcess(process, port, Path(log_file.name), "https" if "--certfile" in args else "http")
    try:
        await wait_until_up(server, ssl_context)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()
