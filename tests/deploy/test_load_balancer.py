"""Two servers behind nginx: clients spread over both and keep streaming through a drain and a kill.

Everything on 127.0.0.1: nginx from Debian's package with the project's own config, two real
`python -m server` processes, eight real `client.StreamClient`s.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import aiohttp
import pytest

from client.config import ClientConfig
from client.connection import StreamClient
from client.display import Display
from client.sources import ImageSource
from tests import media
from perf import nginx
from perf.spawn import SpawnedServer, free_port, spawned_server
from tests.deploy.balancing import connected, wait_for

CLIENTS = 8
SERVER_ARGS = ("--frame-processor", "passthrough", "--drain-timeout", "20")


@pytest.mark.slow
async def test_streams_survive_a_drain_and_a_kill_behind_nginx(tmp_path):
    face = media.insightface_image("Tom_Hanks_54745.png")
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(media.jpeg(media.group_photo()))
    proxy_port = free_port()
    async with contextlib.AsyncExitStack() as stack, aiohttp.ClientSession() as http:
        first = await stack.enter_async_context(spawned_server(SERVER_ARGS, log_level="INFO"))
        second = await stack.enter_async_context(spawned_server(SERVER_ARGS, log_level="INFO"))
        proxy = nginx.start(tmp_path, nginx.shipped_site(proxy_port, [first.port, second.port]))
        stack.callback(lambda: (proxy.terminate(), proxy.wait(timeout=10)))
        config = ClientConfig(source=face, server_url=f"ws://127.0.0.1:{proxy_port}/", binary=True, headless=True,
                              fps=10, reconnect_max_s=1.0, connect_retries=20)
        clients = [StreamClient(config, ImageSource(frame, 640, 480), Display(headless=True), face.read_bytes())
                   for _ in range(CLIENTS)]
        arrivals: list[list[float]] = [[] for _ in clients]

        async def watch() -> None:  # when each client's count of received frames goes up
            seen = [0] * len(clients)
            while True:
                now = time.monotonic()
                for i, client in enumerate(clients):
                    if client.stats.received > seen[i]:
                        seen[i] = client.stats.received
                        arrivals[i].append(now)
                await asyncio.sleep(0.02)

        runs = [asyncio.create_task(client.run()) for client in clients]
        watcher = asyncio.create_task(watch())
        try:
            await wait_for(lambda: _all_streaming(arrivals), 30, "every client to stream")
            assert await connected(http, first) > 0 and await connected(http, second) > 0, "both servers got clients"

            first.process.send_signal(signal.SIGUSR1)  # drain: its clients move to the second server
            await asyncio.get_running_loop().run_in_executor(None, first.process.wait, 30)
            assert await connected(http, second) == CLIENTS
            replacement = await stack.enter_async_context(spawned_server(SERVER_ARGS, log_level="INFO", port=first.port))
            await asyncio.sleep(2)

            second.process.send_signal(signal.SIGKILL)  # a crash: clients reconnect through nginx
            await wait_for(lambda: _has(http, replacement, CLIENTS), 30, "all clients on the replacement")
            killed_at = time.monotonic()
            await asyncio.sleep(3)
            assert all(any(t > killed_at for t in times) for times in arrivals), "every client streams again"
        finally:
            for client in clients:
                client.stop()
            await asyncio.gather(*runs, return_exceptions=True)
            watcher.cancel()
    gaps = [max(b - a for a, b in zip(times, times[1:])) for times in arrivals]
    print(f"\nlongest gap between frames per client (s): {', '.join(f'{g:.2f}' for g in gaps)}")
    assert max(gaps) < 6.0


async def _all_streaming(arrivals: list[list[float]]) -> bool:
    return all(len(times) >= 3 for times in arrivals)


async def _has(http: aiohttp.ClientSession, server: SpawnedServer, clients: int) -> bool:
    return await connected(http, server) == clients
