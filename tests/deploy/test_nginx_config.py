"""The shipped nginx config and the README's snippet, each run as written in Debian's nginx:
both proxy WebSockets to facestream and keep /admin/ to the host."""
from __future__ import annotations

import asyncio
from typing import Callable

import aiohttp
import pytest
from yarl import URL

from protocol import Stats, StatsRequest
from perf import nginx
from tests.server.wsclient import receive, send_json
from perf.spawn import free_port, spawned_server

SITES: dict[str, Callable[[int, int], str]] = {
    "deploy/nginx": lambda listen, upstream: nginx.shipped_site(listen, [upstream]),
    "README": nginx.readme_site,
}


@pytest.mark.parametrize("site", SITES)
async def test_websocket_through_nginx_and_no_drain(tmp_path, site):
    """The proxy's own rule is all that keeps /admin/ in for a server without a token: the
    server sees a loopback peer and drains. The README's snippet once forwarded it (202); with
    a token the server itself would refuse (401), so this server has none."""
    async with spawned_server(["--frame-processor", "passthrough"], log_level="INFO") as server:
        port = free_port()
        proxy = nginx.start(tmp_path, SITES[site](port, server.port))
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(50):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                async with http.ws_connect(f"ws://127.0.0.1:{port}/") as ws:
                    await send_json(ws, StatsRequest())
                    assert isinstance(await receive(ws), Stats)
            async with aiohttp.ClientSession() as anyone:
                for path in ("/admin/drain", "/%61dmin/drain", "//admin/drain", "/./admin/drain"):
                    async with anyone.post(URL(f"http://127.0.0.1:{port}{path}", encoded=True)) as response:
                        assert response.status in (403, 404), f"drain is for the host, not the proxy's clients: {path}"
                async with anyone.get(f"{server.http_url}/readyz") as response:
                    assert response.status == 200, "the server behind is not draining"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
