"""What the tests of servers behind a balancer ask of each server, directly."""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import aiohttp

from perf.spawn import SpawnedServer


async def connected(http: aiohttp.ClientSession, server: SpawnedServer) -> int:
    """Clients connected to `server` now, by its own /stats."""
    async with http.get(f"{server.http_url}/stats") as response:
        return (await response.json())["connected_clients"]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
