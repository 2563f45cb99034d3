"""Helpers for running the real `python -m client` against servers on 127.0.0.1."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests import media

REPO = Path(__file__).resolve().parents[2]
# Transport only: these tests are about the client, not about what the server does to faces.
PASSTHROUGH = {"frame_processors": ("passthrough",)}
SUMMARY = re.compile(
    r"frames sent (?P<sent>\d+), received (?P<received>\d+), skipped (?P<skipped>\d+); "
    r"(?P<fps>[\d.]+) fps received; latency p50 (?P<p50>[\d.na]+) ms, p95 (?P<p95>[\d.na]+) ms; "
    r"max in flight (?P<max_in_flight>\d+)/(?P<limit>\d+); errors (?P<errors>\d+), reconnects (?P<reconnects>\d+)"
)


@dataclass
class ClientRun:
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, float]:
        match = SUMMARY.search(self.stdout)
        assert match, f"no summary line in stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return {key: float(value) for key, value in match.groupdict().items()}


def assert_one_line_error(run: ClientRun, expected: str, returncode: int = 1) -> None:
    assert run.returncode == returncode, run
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], run.stderr


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.01)


def ws_url(server: TestServer) -> str:
    return str(server.make_url("/")).replace("http", "ws", 1)


def client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "FACESTREAM_TOKEN")}
    env["PYTHONPATH"] = str(REPO)
    return env


async def start_client(*args: str, module: str = "client") -> asyncio.subprocess.Process:
    """Start the client without blocking the loop, so a server in this test's loop keeps serving.
    `module` runs it through a wrapper (tests.client.virtualcam_runner) instead."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO, env=client_env(),
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 30.0) -> ClientRun:
    """Wait for the client to exit; on a timeout kill it, keeping what it printed for the report."""
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = asyncio.ensure_future(process.stdout.read()), asyncio.ensure_future(process.stderr.read())
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"client did not finish in {timeout} s:\n{(await stdout).decode()}\n{(await stderr).decode()}"
        ) from None
    return ClientRun(process.returncode, (await stdout).decode(), (await stderr).decode())


async def run_client(*args: str, timeout: float = 30.0, module: str = "client") -> ClientRun:
    return await finish(await start_client(*args, module=module), timeout)


async def run_client_against(app: web.Application, *args: str) -> ClientRun:
    """Run the client to its end against `app`, served on 127.0.0.1 for this run only."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        return await run_client(*args, "--server-url", ws_url(server))
    finally:
        await server.close()


@pytest.fixture(scope="session")
def face_path(tmp_path_factory) -> Path:
    """A real photo with faces, as the source face."""
    path = tmp_path_factory.mktemp("faces") / "face.jpg"
    path.write_bytes(media.jpeg(media.group_photo()))
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> Path:
    """A 30-frame 640x480 video of real faces, each frame numbered."""
    return media.write_video(tmp_path_factory.mktemp("video") / "faces.mp4", 30)
