"""Several devices per server, readiness, and draining without cutting streams."""
from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from protocol import Frame, ProcessedFrame, Reconnect, Stats, StatsRequest
from server.app import DEVICES, DRAIN
from tests.server.wsclient import receive, send, send_json
from perf.spawn import spawned_server


async def test_clients_spread_over_virtual_devices(start_server, http, frame_jpeg):
    server = await start_server(devices=(0, 1, 2))
    sockets = [await http.ws_connect(server.make_url("/")) for _ in range(6)]
    try:
        for seq, ws in enumerate(sockets):
            await send(ws, Frame(jpeg=frame_jpeg, timestamp=1.0, seq=seq), binary=True)
            assert (await receive(ws)).seq == seq
        devices = server.app[DEVICES]
        assert [d.clients for d in devices] == [2, 2, 2]
        await send_json(sockets[0], StatsRequest())
        stats = await receive(sockets[0])
        assert [d["device"] for d in stats.data["devices"]] == [0, 1, 2]
        assert all(d["frames_per_s"] > 0 for d in stats.data["devices"])
        async with http.get(server.make_url("/metrics")) as response:
            assert 'facestream_device_clients{device="2"} 2.0' in await response.text()
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_busy_device_gets_no_new_clients(start_server, http):
    server = await start_server(devices=(0, 1))
    busy, idle = server.app[DEVICES]
    await asyncio.to_thread(busy.model_device.run, "a long model call", 1, lambda: time.sleep(1.0))
    async with http.ws_connect(server.make_url("/")):
        assert (busy.clients, idle.clients) == (0, 1)


async def test_readyz_and_drain_over_http(start_server, http, frame_jpeg):
    server = await start_server()
    async with http.get(server.make_url("/readyz")) as response:
        assert response.status == 200 and (await response.json())["status"] == "ready"
    async with http.ws_connect(server.make_url("/")) as ws:
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=1.0, seq=1), binary=True)
        assert isinstance(await receive(ws), ProcessedFrame)
        async with http.post(server.make_url("/admin/drain")) as response:
            assert response.status == 202
        assert await receive(ws) == Reconnect(reason="server draining", delay_ms=0)
        async with http.get(server.make_url("/readyz")) as response:
            assert response.status == 503
        try:
            await http.ws_connect(server.make_url("/"))
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
        else:
            raise AssertionError("a draining server must refuse new clients")
        await send_json(ws, StatsRequest())  # connected clients keep being served until they leave
        assert isinstance(await receive(ws), Stats)
    for _ in range(50):
        if server.app[DRAIN].finished:
            break
        await asyncio.sleep(0.1)
    assert server.app[DRAIN].finished, "the drain finishes once the last client left"


async def test_drain_needs_the_token_when_one_is_set(start_server, http):
    server = await start_server(tokens=("tkn",))
    async with http.post(server.make_url("/admin/drain")) as response:
        assert response.status == 401
    async with http.post(server.make_url("/admin/drain"), headers={"Authorization": "Bearer tkn"}) as response:
        assert response.status == 202


async def test_sigusr1_drains_and_the_process_exits_when_empty(frame_jpeg):
    async with spawned_server(["--frame-processor", "passthrough", "--drain-timeout", "30"], log_level="INFO") as server, \
            aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            server.process.send_signal(signal.SIGUSR1)
            message = await receive(ws)
            assert isinstance(message, Reconnect)
            assert server.process.poll() is None, "it waits for its clients"
        assert await asyncio.get_running_loop().run_in_executor(None, server.process.wait, 20) == 0
        assert "drained" in server.output()
