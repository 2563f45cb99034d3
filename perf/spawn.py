"""Start `python -m server` for a benchmark on a free 127.0.0.1 port, and stop it afterwards.

Benchmarks spawn a fresh server per measurement so one run's warm caches, leftover
sessions or counters never leak into the next. The server's output goes to a temporary
log whose tail is shown if it dies while starting (a wrong option, a missing model).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
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

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]


async def _wait_healthy(server: SpawnedServer, timeout_s: float) -> None:
    """/healthz answers once the models are loaded (the app starts listening only then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession() as http:
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
                         start_timeout_s: float = START_TIMEOUT_S) -> AsyncIterator[SpawnedServer]:
    """`python -m server --host 127.0.0.1 --port <free> --log-level <log_level> *args`, up and healthy."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w", prefix="facestream-server-", suffix=".log") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level,
             *args],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        server = SpawnedServer(process, port, Path(log_file.name))
        try:
            await _wait_healthy(server, start_timeout_s)
            yield server
        finally:
            await asyncio.to_thread(_stop, process)
