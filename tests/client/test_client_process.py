"""The real `python -m client` process against real servers on 127.0.0.1.

Every test starts the client as a subprocess (without blocking this test's event loop, where
the server runs) and checks what a user sees: exit status, the summary line, the recording,
and the server's own statistics.
"""
from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from protocol import Reconnect
from server.app import SESSIONS, create_app
from server.config import ServerConfig
from server.tls import make_self_signed, server_ssl_context
from tests import media
from perf.spawn import free_port
from tests.client.conftest import (
    PASSTHROUGH,
    assert_one_line_error,
    finish,
    run_client,
    run_client_against,
    start_client,
    until,
    ws_url,
)
from tests.client.fake_server import Observed, slow_app

MODES = pytest.mark.parametrize("mode", [[], ["--binary"]], ids=["json", "binary"])


async def server_stats(http, server: TestServer) -> dict:
    async with http.get(server.make_url("/stats")) as response:
        return await response.json()


async def wait_for_processed(http, server: TestServer, count: int, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await server_stats(http, server))["frames_processed"] < count:
        assert asyncio.get_running_loop().time() < deadline, "the client sent no frames"
        await asyncio.sleep(0.05)


def recorded_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} is not a readable video"
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@MODES
async def test_streams_a_video_file_and_records_what_comes_back(start_server, http, face_path, face_video, tmp_path, mode):
    server = await start_server(**PASSTHROUGH)
    out = tmp_path / "out.mp4"
    run = await run_client("-s", str(face_path), "--input", str(face_video), "--headless", "--record", str(out),
                           "--server-url", ws_url(server), *mode)
    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr
    summary = run.summary()
    assert summary["sent"] + summary["skipped"] == 30  # every frame of the video was read once
    assert 1 <= summary["received"] <= summary["sent"]
    assert summary["max_in_flight"] <= 2 and summary["errors"] == 0
    frames = recorded_frames(out)
    assert len(frames) == summary["received"]
    assert frames[0].shape == (480, 640, 3)
    assert np.abs(frames[0].astype(np.int16) - media.group_photo()).mean() < 12  # the faces, not noise
    stats = await server_stats(http, server)
    assert stats["frames_received"] == summary["sent"]
    assert stats["frames_processed"] == summary["received"]
    assert stats["frames_passthrough"] == 0  # the source face was set before the first frame


@MODES
async def test_max_frames_stops_after_that_many_processed_frames(start_server, face_path, face_video, tmp_path, mode):
    server = await start_server(**PASSTHROUGH)
    out = tmp_path / "out.mp4"
    run = await run_client("-s", str(face_path), "--input", str(face_video), "--loop", "--headless",
                           "--max-frames", "12", "--record", str(out), "--fps", "60",
                           "--server-url", ws_url(server), *mode)
    assert run.returncode == 0, run
    assert run.summary()["received"] == 12
    assert len(recorded_frames(out)) == 12


async def test_still_image_input_at_a_smaller_size(start_server, face_path, tmp_path):
    server = await start_server(**PASSTHROUGH)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), media.group_photo())
    out = tmp_path / "out.mp4"
    run = await run_client("-s", str(face_path), "--input", str(still), "--headless", "--max-frames", "5",
                           "--width", "320", "--height", "240", "--record", str(out), "--binary",
                           "--server-url", ws_url(server))
    assert run.returncode == 0, run
    frames = recorded_frames(out)
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)


async def test_reconnects_after_the_server_restarts_and_resends_the_source_face(start_server, http, face_path, face_video):
    first = await start_server(**PASSTHROUGH)
    port = first.port
    client = await start_client("-s", str(face_path), "--input", str(face_video), "--loop", "--headless",
                                "--max-frames", "60", "--reconnect-max", "1", "--server-url", ws_url(first))
    second = None
    try:
        await wait_for_processed(http, first, 10)
        await first.close()  # closes the client's connection with 1001 (going away)
        await asyncio.sleep(0.5)  # the client retries against a closed port meanwhile
        config = ServerConfig(host="127.0.0.1", port=port, codec_threads=2, **PASSTHROUGH)
        second = TestServer(create_app(config), host="127.0.0.1", port=port)
        await second.start_server()
        run = await finish(client, timeout=45)
        assert run.returncode == 0, run
        summary = run.summary()
        assert summary["reconnects"] == 1 and summary["received"] == 60
        assert "reconnecting" in run.stderr and "Traceback" not in run.stderr
        stats = await server_stats(http, second)
        assert stats["clients_total"] == 1 and stats["frames_processed"] > 0
        assert stats["frames_passthrough"] == 0  # the new server got the source face before any frame
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        if second is not None:
            await second.close()


async def test_follows_a_drain_to_a_new_server_on_the_same_port(start_server, http, face_path):
    """The server drains (POST /admin/drain): the client leaves when asked, its immediate
    reconnect meets the draining (then closed) server, the backoff loop takes over, and it
    streams on with the next server there, its options sent again."""
    first = await start_server(**PASSTHROUGH)
    port = first.port
    client = await start_client("-s", str(face_path), "--synthetic", "--headless", "--reconnect-max", "1",
                                "--opacity", "0.5", "--server-url", ws_url(first))
    second = None
    try:
        await wait_for_processed(http, first, 5)
        async with http.post(first.make_url("/admin/drain")) as response:
            assert response.status == 202
        await until(lambda: not first.app[SESSIONS], what="the client leaving the draining server")
        await first.close()
        config = ServerConfig(host="127.0.0.1", port=port, codec_threads=2, **PASSTHROUGH)
        second = TestServer(create_app(config), host="127.0.0.1", port=port)
        await second.start_server()
        await wait_for_processed(http, second, 5)
        [session] = second.app[SESSIONS]
        assert session.core.options["opacity"] == 0.5  # the starting options went to the new server too
    finally:
        client.send_signal(signal.SIGINT)
        run = await finish(client, timeout=15)
        if second is not None:
            await second.close()
    assert run.returncode == 0, run
    assert "server asked to reconnect (server draining); reconnecting now" in run.stderr
    assert "retrying in" in run.stderr  # 503 from the draining server, then a closed port: backoff
    assert run.summary()["reconnects"] == 1 and "Traceback" not in run.stderr


@pytest.mark.parametrize("delay_ms", [0, 300])
async def test_a_reconnect_request_is_not_a_failure(face_path, delay_ms):
    """Asked to reconnect before any frame came back (which, as a dropped connection, would
    cost a backoff step), the client reconnects after exactly the delay asked for."""
    observed = Observed()
    app = slow_app(0.0, observed, Reconnect(reason="maintenance", delay_ms=delay_ms))
    run = await run_client_against(app, "-s", str(face_path), "--synthetic", "--headless", "--max-frames", "3")
    assert run.returncode == 0, run
    assert observed.sources == 2 and len(observed.connected_at) == 2
    assert observed.connected_at[1] - observed.connected_at[0] >= delay_ms / 1000
    then = "reconnecting now" if delay_ms == 0 else "reconnecting in 0.3 s as asked"
    assert f"server asked to reconnect (maintenance); {then}" in run.stderr
    assert "reconnecting in" not in run.stderr.replace("reconnecting in 0.3 s as asked", "")
    assert run.summary()["received"] == 3


async def test_repeated_reconnect_requests_without_frames_fall_back_to_the_backoff(face_path):
    observed = Observed()
    app = slow_app(0.0, observed, Reconnect(reason="maintenance"), reconnect_connections=2)
    run = await run_client_against(app, "-s", str(face_path), "--synthetic", "--headless", "--max-frames", "3")
    assert run.returncode == 0, run
    assert len(observed.connected_at) == 3
    assert run.stderr.count("reconnecting now") == 1 and run.stderr.count("lost; reconnecting in") == 1


async def test_ctrl_c_exits_cleanly_with_a_summary(start_server, http, face_path):
    server = await start_server(**PASSTHROUGH)
    client = await start_client("-s", str(face_path), "--synthetic", "--headless", "--server-url", ws_url(server))
    try:
        await wait_for_processed(http, server, 5)
    finally:
        client.send_signal(signal.SIGINT)
    run = await finish(client, timeout=15)
    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr
    summary = run.summary()
    assert summary["received"] >= 5 and summary["p50"] > 0
    assert len([line for line in run.stdout.splitlines() if line.strip()]) == 1  # one line


async def test_stats_prints_the_server_stats_once(start_server, face_path):
    server = await start_server(**PASSTHROUGH)
    run = await run_client("--stats", "--server-url", ws_url(server))
    assert run.returncode == 0, run
    stats = json.loads(run.stdout)
    assert stats["connected_clients"] == 1 and "frames_processed" in stats and "processing_time_avg" in stats


@pytest.mark.parametrize("limit", [1, 3])
async def test_in_flight_bound_holds_against_a_slow_server(face_path, limit):
    """The server needs 80 ms per frame, the source runs at 50 fps: the client must skip
    frames, and the server never sees more than K of its frames unanswered."""
    observed = Observed()
    run = await run_client_against(slow_app(0.08, observed), "-s", str(face_path), "--synthetic", "--headless",
                                   "--fps", "50", "--max-frames", "10", "--in-flight", str(limit), "--binary")
    assert run.returncode == 0, run
    summary = run.summary()
    assert summary["received"] == 10 and summary["skipped"] > 0
    assert observed.sources == 1 and observed.frames == summary["sent"]
    assert max(observed.outstanding) <= limit
    assert summary["max_in_flight"] <= limit


async def test_frames_that_are_never_answered_do_not_stall_the_stream(face_path):
    """A server that swallows every frame: the frame timeout keeps the window moving."""
    observed = Observed()
    server = TestServer(slow_app(None, observed), host="127.0.0.1")
    await server.start_server()
    try:
        client = await start_client("-s", str(face_path), "--synthetic", "--headless", "--fps", "50",
                                    "--frame-timeout", "0.3", "--server-url", ws_url(server))
        await asyncio.sleep(2.5)
        client.send_signal(signal.SIGINT)
        run = await finish(client, timeout=15)
    finally:
        await server.close()
    assert run.returncode == 0, run
    # ~2 s of streaming, 2 frames per 0.3 s window: about 12; never 100 (no bound) nor 2 (stalled)
    assert 4 <= observed.frames <= 30, observed.frames


# ---- TLS and tokens -----------------------------------------------------------------
@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    make_self_signed(cert, key, ["127.0.0.1"], days=1)
    return cert, key


async def test_wss_with_a_self_signed_certificate_and_a_token(face_path, self_signed):
    """Against the real server with TLS and a required token: the right token over a trusted
    certificate streams; an untrusted certificate and a wrong token are one clear line each."""
    cert, key = self_signed
    config = ServerConfig(host="127.0.0.1", port=0, codec_threads=2, tokens=("s3cret",), **PASSTHROUGH)
    server = TestServer(create_app(config), host="127.0.0.1", scheme="https")
    await server.start_server(ssl=server_ssl_context(cert, key))
    url = f"wss://127.0.0.1:{server.port}/"
    common = ("-s", str(face_path), "--synthetic", "--headless", "--max-frames", "3", "--server-url", url)
    try:
        trusted = await run_client(*common, "--ca-file", str(cert), "--token", "s3cret", "--binary")
        untrusted = await run_client(*common, "--token", "s3cret")
        wrong_token = await run_client(*common, "--ca-file", str(cert), "--token", "nope")
    finally:
        await server.close()
    assert trusted.returncode == 0, trusted
    assert trusted.summary()["received"] == 3
    assert_one_line_error(untrusted, f"TLS failure connecting to {url}")
    assert "--ca-file" in untrusted.stderr
    assert_one_line_error(wrong_token, f"{url} refused the connection: HTTP 401 (wrong or missing --token)")


async def test_token_is_sent_as_a_bearer_header_and_a_refusal_is_one_line(face_path):
    seen: list[str | None] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(status=401, text="unauthorized")

    app = web.Application()
    app.router.add_get("/", refuse)
    run = await run_client_against(app, "-s", str(face_path), "--synthetic", "--headless", "--token", "s3cret")
    assert seen == ["Bearer s3cret"]  # no retries: a wrong token will not get better
    assert run.returncode == 1 and "HTTP 401" in run.stderr and "--token" in run.stderr
    assert "s3cret" not in run.stderr


# ---- the error lines a user meets ---------------------------------------------------
async def test_camera_that_cannot_open(face_path):
    run = await run_client("-s", str(face_path), "--camera-index", "99", "--headless")
    assert_one_line_error(run, "Failed to start camera 99")
    assert run.stderr.strip().splitlines()[-1] == "error: Failed to start camera 99"


async def test_connection_refused_names_the_url_after_a_few_retries(face_path):
    url = f"ws://127.0.0.1:{free_port()}"
    run = await run_client("-s", str(face_path), "--synthetic", "--headless", "--server-url", url,
                           "--connect-retries", "2")
    assert_one_line_error(run, f"Cannot connect to {url}: Connection refused (gave up after 3 attempts)")
    assert run.stderr.count("retrying in") == 2


async def test_missing_source_face_path(tmp_path):
    run = await run_client("-s", str(tmp_path / "nobody.jpg"), "--synthetic", "--headless")
    assert_one_line_error(run, f"Source face not found: {tmp_path / 'nobody.jpg'}", returncode=2)


async def test_source_face_is_required(tmp_path):
    run = await run_client("--synthetic", "--headless")
    assert_one_line_error(run, "-s/--source", returncode=2)


async def test_server_refuses_the_source_face(start_server, tmp_path):
    server = await start_server(**PASSTHROUGH)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a picture of anyone" * 20)
    run = await run_client("-s", str(garbage), "--synthetic", "--headless", "--server-url", ws_url(server))
    assert_one_line_error(run, f"The server refused the source face {garbage}:")


async def test_server_finds_no_face_in_the_source(start_server, tmp_path):
    """The embedded default pipeline answers a faceless photo with an error confirmation."""
    if ServerConfig().frame_processors == ("passthrough",):
        pytest.skip("the server's default pipeline does not look for faces")
    server = await start_server(frame_processors=ServerConfig().frame_processors)  # the embedded default
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 128, np.uint8))
    run = await run_client("-s", str(blank), "--synthetic", "--headless", "--server-url", ws_url(server))
    assert_one_line_error(run, f"The server refused the source face {blank}:")


async def test_a_full_server_is_retried_then_reported(start_server, http, face_path):
    """The server closes a connection beyond --max-clients with 1013 (try again later)."""
    server = await start_server(max_clients=1, **PASSTHROUGH)
    async with http.ws_connect(server.make_url("/")):
        run = await run_client("-s", str(face_path), "--synthetic", "--headless", "--server-url", ws_url(server),
                               "--connect-retries", "1")
    assert_one_line_error(run, f"{ws_url(server)} never confirmed the source face: code 1013")
    assert "(gave up after 2 attempts)" in run.stderr


async def test_window_without_a_display_says_use_headless(face_path):
    run = await run_client("-s", str(face_path), "--synthetic")  # DISPLAY is removed from the environment
    assert_one_line_error(run, "--headless", returncode=2)


async def test_bad_server_url(face_path):
    run = await run_client("-s", str(face_path), "--synthetic", "--headless", "--server-url", "http://x:1")
    assert_one_line_error(run, "ws://HOST:PORT", returncode=2)
