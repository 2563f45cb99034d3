"""The shipped nginx config is valid, proxies WebSockets to facestream and keeps /admin/ to the host."""
from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from protocol import Stats, StatsRequest
from perf import nginx
from tests.server.wsclient import receive, send_json
from perf.spawn import free_port, spawned_server


TOKEN = "nginx-test-token"


async def test_websocket_through_nginx(tmp_path):
    """With a token set (as behind any proxy), the proxy's own rule is all that keeps /admin/ in."""
    async with spawned_server(["--frame-processor", "passthrough", "--token", TOKEN], log_level="INFO") as server:
        port = free_port()
        proxy = nginx.start(tmp_path, port, [server.port])
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
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
                for path in ("/admin/drain", "/%61dmin/drain"):  # the server decodes %61 to "a"
                    async with http.post(URL(f"http://127.0.0.1:{port}{path}", encoded=True)) as response:
                        assert response.status == 403, f"drain is for the host, not for the proxy's clients: {path}"
                async with http.get(f"{server.http_url}/readyz") as response:
                    assert response.status == 200, "the server behind is not draining"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
