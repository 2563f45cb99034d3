"""`python -m client --transport webrtc` against real servers on 127.0.0.1: the stream, the
recording and the virtual camera over a WebRTC peer, and the failures a user can meet."""
from __future__ import annotations

import asyncio
import json
import logging

import numpy as np

from client.config import ClientConfig
from client.connection import StreamClient
from client.display import Display
from client.sources import SyntheticSource
from tests import media
from tests.client.conftest import PASSTHROUGH, assert_one_line_error, run_client, until, ws_url
from tests.client.test_client_process import recorded_frames, server_stats
from tests.client.test_virtual_cam import RUNNER, pyvirtualcam_installed  # noqa: F401 - a fixture

WEBRTC = ("--transport", "webrtc")


async def test_streams_over_webrtc_records_and_ends_its_session(start_server, http, face_path, tmp_path):
    server = await start_server(**PASSTHROUGH)
    out = tmp_path / "out.mp4"
    still = tmp_path / "still.png"
    still.write_bytes(media.jpeg(media.group_photo()))
    run = await run_client("-s", str(face_path), "--input", str(still), "--headless", "--max-frames", "20",
                           "--record", str(out), "--server-url", ws_url(server), *WEBRTC)
    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr
    summary = run.summary()
    assert summary["received"] == 20 and summary["errors"] == 0
    frames = recorded_frames(out)
    assert len(frames) == 20 and frames[-1].shape == (480, 640, 3)
    assert np.abs(frames[-1].astype(np.int16) - media.group_photo()).mean() < 12  # the picture, through VP8
    await asyncio.sleep(0.2)
    stats = await server_stats(http, server)
    webrtc = stats["transports"]["webrtc"]
    assert stats["connected_clients"] == 0, "the client DELETEs its session when it leaves"
    assert webrtc["frames_processed"] >= 20 and webrtc["frames_passthrough"] == 0, webrtc  # face set first
    assert stats["transports"].get("websocket", {}).get("frames_received", 0) == 0


async def test_a_drain_over_webrtc_is_followed_at_once_then_the_backoff_takes_over(start_server, http, face_path,
                                                                                   caplog):
    """The WebSocket loop's reconnect policy on the WebRTC loop: the server's `reconnect` is
    an instruction (no backoff step), and the draining server's refusals are retried."""
    caplog.set_level(logging.INFO, logger="client")
    server = await start_server(**PASSTHROUGH)
    config = ClientConfig(source=face_path, server_url=ws_url(server), synthetic=True, width=160, height=120,
                          headless=True, transport="webrtc", reconnect_max_s=1.0)
    client = StreamClient(config, SyntheticSource(160, 120), Display(headless=True), face_path.read_bytes())
    run = asyncio.create_task(client.run())
    try:
        await until(lambda: client.stats.received >= 5, timeout=20, what="frames over WebRTC")
        async with http.post(server.make_url("/admin/drain")) as response:
            assert response.status == 202
        await until(lambda: "retrying in" in caplog.text, what="a refused attempt at the draining server")
    finally:
        client.stop()
        await asyncio.wait_for(run, 10)
    assert "server asked to reconnect (server draining); reconnecting now" in caplog.text
    assert "WebRTC connection to" not in caplog.text, "a reconnect request is no lost connection"


async def test_webrtc_to_the_virtual_camera(pyvirtualcam_installed, start_server, face_path, face_video,  # noqa: F811
                                            tmp_path):
    server = await start_server(**PASSTHROUGH)
    log = tmp_path / "frames.jsonl"
    run = await run_client(f"record:{log}", "-s", str(face_path), "--input", str(face_video), "--headless",
                           "--virtual-cam", "--max-frames", "10", "--width", "320", "--height", "240",
                           "--server-url", ws_url(server), *WEBRTC, module=RUNNER)
    assert run.returncode == 0, run
    records = [json.loads(line) for line in log.read_text().splitlines()]
    frames = [record for record in records if "sha1" in record]
    assert len(frames) >= 10 and all((f["width"], f["height"]) == (320, 240) for f in frames)


async def test_a_wrong_token_over_webrtc_is_one_line(start_server, face_path):
    server = await start_server(tokens=("right",), **PASSTHROUGH)
    run = await run_client("-s", str(face_path), "--synthetic", "--headless", "--token", "wrong",
                           "--server-url", ws_url(server), *WEBRTC)
    assert_one_line_error(run, "HTTP 401 (wrong or missing --token)")


async def test_a_server_without_webrtc_is_one_line(start_server, face_path):
    server = await start_server(webrtc=False, **PASSTHROUGH)
    run = await run_client("-s", str(face_path), "--synthetic", "--headless", "--server-url", ws_url(server), *WEBRTC)
    assert_one_line_error(run, "does not take WebRTC clients")


async def test_output_jobs_stay_on_the_websocket(face_path, face_video, tmp_path):
    run = await run_client("-s", str(face_path), "--input", str(face_video), "--output", str(tmp_path / "o.mp4"),
                           *WEBRTC)
    assert_one_line_error(run, "takes no --transport webrtc", returncode=2)


def test_a_large_source_photo_is_shrunk_to_fit_the_control_channel():
    import cv2

    from client.webrtc_stream import face_for_channel, fits_channel
    from protocol import SourceFace

    small = media.jpeg(media.group_photo())
    assert face_for_channel(small) == small  # fits: sent as it is
    rng = np.random.default_rng(0)
    photo = cv2.resize(media.group_photo(), (3000, 2250))
    photo = (photo + rng.integers(-20, 20, photo.shape)).clip(0, 255).astype(np.uint8)  # a phone's noisy 4 MB
    large = media.jpeg(photo, quality=95)
    assert not fits_channel(SourceFace(image=large))
    fitted = face_for_channel(large)
    assert fits_channel(SourceFace(image=fitted))
    assert media.decode(fitted).shape[1] >= 640  # still a photo the detector can use
