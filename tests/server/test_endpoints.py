"""HTTP routes, ping, and the stats fields users and tools rely on."""
from __future__ import annotations

import time

from protocol import Frame, Pong, options
from tests.server.test_streaming import assert_accounted, stats_of
from tests.server.wsclient import receive, send_json

REQUIRED_STATS = {
    "connected_clients", "frames_processed", "processing_time_avg", "frames_received", "frames_superseded",
    "frames_failed", "batches", "batch_size_avg", "uptime_s", "server_time_p50", "server_time_p90", "server_time_p99",
}


async def test_ping_pong(start_server, http):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await ws.send_str('{"type": "ping", "timestamp": 1.0, "client_id": "x"}')
        pong = await receive(ws)
        assert isinstance(pong, Pong) and abs(pong.timestamp - time.time()) < 5


async def test_stats_everywhere_agree(start_server, http, frame_jpeg):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        for seq in range(3):
            await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=float(seq), seq=seq))
            await receive(ws)
        ws_stats = await stats_of(ws)
        async with http.get(server.make_url("/stats")) as response:
            assert response.status == 200
            http_stats = await response.json()
        async with http.get(server.make_url("/metrics")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            metrics = await response.text()
    assert REQUIRED_STATS <= ws_stats.keys()
    assert ws_stats["connected_clients"] == http_stats["connected_clients"] == 1
    assert ws_stats["frames_processed"] == http_stats["frames_processed"] == 3
    assert 0 < ws_stats["processing_time_avg"] < 1.0
    assert 0 < ws_stats["server_time_p50"] <= ws_stats["server_time_p99"]
    assert ws_stats["batch_size_avg"] >= 1
    assert_accounted(http_stats)
    assert 'facestream_frames_total{outcome="processed"} 3.0' in metrics
    assert "facestream_connected_clients 1.0" in metrics
    assert 'facestream_server_time_seconds_count 3.0' in metrics


async def test_healthz_and_plain_get_of_the_websocket_path(start_server, http):
    server = await start_server()
    async with http.get(server.make_url("/healthz")) as response:
        assert response.status == 200 and (await response.json())["status"] == "ok"
    async with http.get(server.make_url("/")) as response:
        assert response.status == 200 and "<html" in await response.text()


async def test_the_options_table_is_served_for_the_page_with_the_servers_defaults(start_server, http):
    server = await start_server(options={**options.DEFAULT_OPTIONS, "opacity": 0.5, "blend": "poisson"})
    async with http.get(server.make_url("/options")) as response:
        served = {row["name"]: row for row in await response.json()}
    assert response.status == 200
    assert list(served) == [name for name, option in options.OPTIONS.items() if not option.read_by], \
        "every option but those only processors this server lacks read (it runs passthrough)"
    assert served["opacity"]["default"] == 0.5 and served["blend"]["default"] == "poisson"
    assert served["mirror"]["default"] is options.OPTIONS["mirror"].default


async def test_disconnect_accounts_for_pending_frames(start_server, http, frame_jpeg):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        for seq in range(20):
            await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=float(seq), seq=seq))
    # The client left without reading: everything it sent must still be accounted for.
    async with http.ws_connect(server.make_url("/")) as ws:
        for _ in range(50):
            counts = await stats_of(ws)
            if counts["connected_clients"] == 1 and counts["frames_in_flight"] == 0:
                break
    assert counts["frames_received"] == 20
    assert_accounted(counts)
