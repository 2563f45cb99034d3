"""The shipped HAProxy config: valid, proxies WebSockets, spreads clients over the servers,
keeps /admin/ to the host (the servers have a token, as behind any proxy: the proxy's rule is
all that stops a drain), and sends new clients past a draining server."""
from __future__ import annotations

import contextlib
import signal

import aiohttp
from yarl import URL

from perf.spawn import free_port, spawned_server
from protocol import Stats, StatsRequest
from tests.deploy import haproxy
from tests.deploy.balancing import connected, wait_for
from tests.server.wsclient import receive, send_json

TOKEN = "haproxy-test-token"
SERVER_ARGS = ("--frame-processor", "passthrough", "--drain-timeout", "30", "--token", TOKEN)


async def test_haproxy_spreads_clients_and_routes_new_ones_past_a_draining_server(tmp_path):
    proxy_port = free_port()
    base = f"http://127.0.0.1:{proxy_port}"
    async with (contextlib.AsyncExitStack() as stack,
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http):
        first = await stack.enter_async_context(spawned_server(SERVER_ARGS, log_level="INFO"))
        second = await stack.enter_async_context(spawned_server(SERVER_ARGS, log_level="INFO"))
        proxy = haproxy.start(tmp_path, proxy_port, [first.port, second.port])
        stack.callback(lambda: (proxy.terminate(), proxy.wait(timeout=10)))

        async def proxy_ready() -> bool:
            try:
                async with http.get(f"{base}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_for(proxy_ready, 15, "HAProxy to accept connections")

        async def open_client() -> aiohttp.ClientWebSocketResponse:
            ws = await stack.enter_async_context(http.ws_connect(f"ws://127.0.0.1:{proxy_port}/"))
            await send_json(ws, StatsRequest())
            assert isinstance(await receive(ws), Stats), "the stream works through the proxy"
            return ws

        for _ in range(4):
            await open_client()
        assert (await connected(http, first), await connected(http, second)) == (2, 2), "least connections"

        for path in ("/admin/drain", "/%61dmin/drain"):  # the server decodes %61 to "a"; the token would let it drain
            async with http.post(URL(f"{base}{path}", encoded=True)) as response:
                assert response.status == 403, f"drain is for the host, not for the proxy's clients: {path}"
        assert await connected(http, first) == 2, "nothing was drained through the proxy"

        first.process.send_signal(signal.SIGUSR1)  # drain: /readyz and new upgrades answer 503

        async def draining() -> bool:
            async with http.get(f"{first.http_url}/readyz") as response:
                return response.status == 503

        await wait_for(draining, 10, "the first server to drain")
        for _ in range(4):  # before HAProxy's checks (every 2 s, down after 2) notice: its retry on 503 moves them
            await open_client()
        assert await connected(http, second) == 6, "every new client went to the server that is not draining"
