"""Authentication, origins and limits, over real sockets."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from protocol import Error, Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation, Stats, StatsRequest
from server.app import TOKENS
from tests import media
from tests.server.wsclient import receive, send, send_json

TOKEN = "s3cret-token-value"


async def handshake_status(http: aiohttp.ClientSession, url, **kwargs) -> int:
    try:
        async with http.ws_connect(url, **kwargs) as ws:
            await send_json(ws, StatsRequest())
            assert isinstance(await receive(ws), Stats)
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


async def test_websocket_needs_a_valid_token(start_server, http):
    server = await start_server(tokens=(TOKEN, "second-token"))
    url = server.make_url("/")
    assert await handshake_status(http, url) == 401
    assert await handshake_status(http, url, headers={"Authorization": "Bearer wrong"}) == 401
    assert await handshake_status(http, url.with_query(token="wrong")) == 401
    assert await handshake_status(http, url, headers={"Authorization": f"Bearer {TOKEN}"}) == 101
    assert await handshake_status(http, url, headers={"Authorization": "Bearer second-token"}) == 101
    assert await handshake_status(http, url.with_query(token=TOKEN)) == 101  # browsers


async def test_http_routes_with_a_token(start_server, http):
    server = await start_server(tokens=(TOKEN,))
    for path, status in (("/healthz", 200), ("/", 200), ("/options", 200), ("/stats", 401), ("/metrics", 401)):
        async with http.get(server.make_url(path)) as response:
            assert response.status == status, path
    for path in ("/stats", "/metrics"):
        async with http.get(server.make_url(path), headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200, path


async def test_token_file_reload_revokes_old_tokens(start_server, http, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("# one token per line\nalpha\n\nbeta\n")
    server = await start_server(token_file=token_file)
    url = server.make_url("/")
    assert await handshake_status(http, url.with_query(token="alpha")) == 101
    token_file.write_text("gamma\n")
    server.app[TOKENS].reload()  # what SIGHUP triggers (tested on the real process in test_cli)
    assert await handshake_status(http, url.with_query(token="alpha")) == 401
    assert await handshake_status(http, url.with_query(token="gamma")) == 101


async def test_origin_check(start_server, http):
    server = await start_server(allowed_origins=("https://app.example",))
    url = server.make_url("/")
    assert await handshake_status(http, url) == 101  # not a browser: no Origin
    assert await handshake_status(http, url, origin="https://app.example") == 101
    assert await handshake_status(http, url, origin=f"http://{url.host}:{url.port}") == 101  # its own page
    assert await handshake_status(http, url, origin="https://evil.example") == 403


async def test_clients_beyond_the_limit_are_told_why(start_server, http):
    server = await start_server(max_clients=2)
    url = server.make_url("/")
    async with http.ws_connect(url) as first, http.ws_connect(url) as second:
        async with http.ws_connect(url) as third:
            message = await third.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert third.close_code == aiohttp.WSCloseCode.TRY_AGAIN_LATER
            assert "server full" in message.extra
        for ws in (first, second):
            await send_json(ws, StatsRequest())
            assert isinstance(await receive(ws), Stats)


async def test_idle_clients_are_disconnected(start_server, http):
    server = await start_server(idle_timeout_s=0.6)
    async with http.ws_connect(server.make_url("/")) as idle:
        message = await idle.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.extra == "idle timeout"


async def test_frame_rate_cap_supersedes_excess_frames(start_server, http, frame_jpeg):
    server = await start_server(max_client_fps=4.0)
    frames = 30
    async with http.ws_connect(server.make_url("/")) as ws:
        for seq in range(frames):  # 30 frames in ~1.5 s: about 10 may be taken at 4 fps
            await send(ws, Frame(jpeg=frame_jpeg, timestamp=float(seq), seq=seq), binary=True)
            await asyncio.sleep(0.05)
        replies = []
        while not replies or replies[-1].seq != frames - 1:
            replies.append(await receive(ws))
        assert all(isinstance(r, ProcessedFrame) for r in replies)
        assert len(replies) <= 10, f"{len(replies)} frames processed at a 4 fps cap"
        await send_json(ws, StatsRequest())
        counts = (await receive(ws)).data["client"]
    assert counts["frames_superseded"] == frames - len(replies)


async def test_source_face_over_the_size_limit(start_server, http, frame_jpeg):
    server = await start_server(max_source_bytes=1000)
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=media.jpeg(media.group_photo())))
        confirmation = await receive(ws)
        assert isinstance(confirmation, SourceFaceConfirmation) and confirmation.status == "error"
        assert "at most 1000" in confirmation.message
        await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=1.0))
        assert isinstance(await receive(ws), ProcessedFrame)


async def test_errors_never_close_an_authenticated_connection(start_server, http, frame_jpeg):
    server = await start_server(tokens=(TOKEN,))
    async with http.ws_connect(server.make_url("/").with_query(token=TOKEN)) as ws:
        await ws.send_str("garbage")
        assert isinstance(await receive(ws), Error)
        await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=1.0))
        assert isinstance(await receive(ws), ProcessedFrame)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("0.0.0.0", False), ("192.0.2.7", False), ("myhost", False)])
def test_loopback_detection(host, loopback):
    from server.security import is_loopback

    assert is_loopback(host) is loopback


async def test_a_token_that_is_not_utf8_is_refused_not_a_crash(start_server, http):
    server = await start_server(tokens=(TOKEN,))
    headers = {"Authorization": "Bearer \udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1")}
    async with http.get(server.make_url("/stats"), headers=headers) as response:
        assert response.status == 401


async def test_drain_without_a_token_is_only_for_local_programs(start_server, http):
    server = await start_server()
    for header in ({"Origin": "http://evil.example"}, {"X-Forwarded-For": "198.51.100.7"}):
        async with http.post(server.make_url("/admin/drain"), headers=header) as response:
            assert response.status == 403, header
    async with http.get(server.make_url("/readyz")) as response:
        assert response.status == 200, "refused drains change nothing"
