"""Start `python -m server` on a free port of this machine, and stop it afterwards.

Benchmarks spawn a fresh server per measurement so one run's warm caches, leftover
sessions or counters never leak into the next; tests use the same to drive the real
process (signals, TLS, logs). The server's output goes to a temporary log whose tail is
shown if it dies while starting (a wrong option, a missing model).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Sequence

import aiohttp

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0  # loading the face models on a busy 2-core machine takes a while
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000


class ServerStartError(RuntimeError):
    """The spawned server exited or never answered /healthz."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class SpawnedServer:
    process: subprocess.Popen
    port: int
    log_path: Path
    tls: bool = False

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.output()[-LOG_TAIL_CHARS:]

    def stop(self) -> None:
        """SIGTERM and wait (a graceful shutdown); kill it if it ignores that."""
        _stop(self.process)


async def _wait_healthy(server: SpawnedServer, timeout_s: float, ssl_context: ssl.SSLContext | None) -> None:
    """/healthz answers once the models are loaded (the app starts listening only then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context or False)) as http:
        while loop.time() < deadline:
            if server.process.poll() is not None:
                raise ServerStartError(f"the server exited during start-up (status {server.process.returncode}):\n"
                                       f"{server.log_tail()}")
            try:
                async with http.get(f"{server.http_url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise ServerStartError(f"the server did not answer /healthz within {timeout_s:g} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the server ignored SIGTERM for %.0f s; killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def spawned_server(args: Sequence[str] = (), log_level: str = "WARNING",
                         start_timeout_s: float = START_TIMEOUT_S, host: str = "127.0.0.1", port: int | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[SpawnedServer]:
    """`python -m server --host <host> --port <free> --log-level <log_level> *args`, up and healthy.

    Traffic stays on this machine: clients reach it on 127.0.0.1 whatever `host` it binds.
    `ssl_context` verifies its certificate when `args` make it serve TLS.
    """
    port = port or free_port()
    with tempfile.NamedTemporaryFile("w", prefix="facestream-server-", suffix=".log") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "--host", host, "--port", str(port), "--log-level", log_level, *args],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        server = SpawnedServer(process, port, Path(log_file.name), tls="--certfile" in args)
        try:
            await _wait_healthy(server, start_timeout_s, ssl_context)
            yield server
        finally:
            await asyncio.to_thread(_stop, process)
