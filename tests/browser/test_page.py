"""End to end: the web page, in Debian's headless Chromium with a fake camera of real faces,
streams to a real server running the classic face swap, and shows what comes back.

Screenshots go to the test's tmp_path, and to $FACESTREAM_SCREENSHOT when it is set:
    FACESTREAM_SCREENSHOT=/tmp/facestream.png ./scripts/test tests/browser/test_page.py
"""
from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from models.hub import ModelHub, ModelSettings
from server.app import OPTION_TABLE, SESSIONS, create_app
from server.config import ServerConfig
from tests import media
from tests.browser import fake_camera
from perf.chromium import launch, write_wav

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # the `chromium` fixture, which every test here uses, skips (or fails in CI)
    async_playwright = expect = None

# A first run may install Chromium with apt-get inside the `chromium` fixture: allow for that.
pytestmark = pytest.mark.timeout(900)

TOM = media.insightface_image("Tom_Hanks_54745.png")
NO_FACE = media.package_dir("skimage") / "data" / "coffee.png"  # a real photo of a coffee cup
TIMEOUT_MS = 30_000  # the classic swap on two shared cores: a few frames per second


@pytest.fixture(scope="module")
def face_boxes() -> list[np.ndarray]:
    faces = ModelHub(ModelSettings()).analyser.analyse([media.group_photo()], [True], False)[0]
    assert len(faces) == 6
    return [face.box for face in faces]


async def screenshot(page, path: Path) -> None:
    """A full-page screenshot from the top (the sticky video would otherwise sit where it was scrolled)."""
    await page.evaluate("window.scrollTo(0, 0)")
    path.write_bytes(await page.screenshot(full_page=True))
    target = os.environ.get("FACESTREAM_SCREENSHOT")
    if target:
        destination = Path(target)
        if path.name != "page.png":  # the main screenshot takes the given name, the others a suffix
            destination = destination.with_name(f"{destination.stem}-{path.stem}{destination.suffix}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


async def canvas_image(page) -> np.ndarray:
    data_url = await page.evaluate("document.getElementById('output').toDataURL('image/png')")
    return media.decode(base64.b64decode(data_url.split(",", 1)[1]))


def check_swapped(shown: np.ndarray, boxes: list[np.ndarray]) -> tuple[list[float], float]:
    """The canvas shows one camera frame with its faces swapped: find which, then compare regions."""
    assert shown.shape == (fake_camera.HEIGHT, fake_camera.WIDTH, 3), shown.shape
    assert shown.std() > 20, "the output canvas is blank"
    candidates = []
    for (dx, dy), frame in zip(fake_camera.offsets(), fake_camera.frames()):
        moved = [box + np.array([dx, dy, dx, dy]) for box in boxes]
        faces, background = media.region_changes(frame, shown, moved)
        candidates.append((background, faces))
    background, faces = min(candidates, key=lambda c: c[0])
    return faces, background


async def test_page_streams_the_camera_and_shows_swapped_faces(
    start_server, http, chromium, camera_video, face_boxes, tmp_path
):
    server = await start_server(frame_processors=("classic",))
    page_url = str(server.make_url("/"))
    async with async_playwright() as pw:
        context = await launch(pw, chromium, camera_video, tmp_path / "profile", viewport={"width": 1280, "height": 900})
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            await page.goto(page_url)

            # The server URL defaults to the page's own origin, as a WebSocket URL.
            await expect(page.locator("#server-url")).to_have_value(page_url.replace("http://", "ws://"))

            await page.set_input_files("#face-file", TOM)
            await expect(page.locator("#face-status")).to_contain_text("sent when you connect")
            await page.select_option("#transport", "websocket")  # WebRTC's page: test_page_over_webrtc
            await page.click("#connect")
            await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
            await expect(page.locator("#face-status")).to_contain_text("Source face set", timeout=TIMEOUT_MS)
            await expect(page.locator("#options-status")).to_contain_text("In effect: swapper classic, many faces on, mouth 0")
            for option in server.app[OPTION_TABLE].values():  # a control per live option, from the server's table
                if option.kind in ("choice", "set") and not option.choices:
                    continue  # nothing of it loaded here (the classic swapper has no face masks): no control
                await expect(page.locator(f"#opt-{option.name.replace('_', '-')}")).to_be_attached()

            await page.wait_for_function(
                "Number(document.getElementById('frames-shown').textContent) > 20", timeout=TIMEOUT_MS
            )
            faces, background = check_swapped(await canvas_image(page), face_boxes)
            assert background < 8.0, f"the canvas must show the camera picture: background change {background}"
            assert sum(change > 8.0 for change in faces) >= 4, f"the faces must be swapped: {faces}"

            fps = float(await page.locator("#fps").text_content())
            latency_ms = float(await page.locator("#latency").get_attribute("data-median-ms"))
            latency_text = await page.locator("#latency").text_content()
            assert fps > 0 and 0 < latency_ms < 10_000, (fps, latency_ms)
            meters = {
                name: await page.locator(f"#{name}").text_content()
                for name in ("frames-shown", "frames-sent", "frames-skipped", "frames-superseded", "in-flight")
            }

            # The server's stats, on demand, count this client's processed frames.
            await page.click("#stats-refresh")
            processed = page.locator('#stats tr[data-stat="client.frames_processed"]')
            await expect(processed).to_be_visible()
            client_processed = json.loads(await processed.get_attribute("data-value"))
            assert client_processed >= 20
            [session] = server.app[SESSIONS]
            assert session.core.pace is not None, "the page asks to be paced (the facestream.pacing subprotocol)"
            async with http.get(server.make_url("/stats")) as response:
                assert (await response.json())["frames_processed"] >= client_processed
            summary = {"fps": fps, "latency": latency_text, **meters, "server client.frames_processed": client_processed}
            print(f"\npage showed: {summary}")
            (tmp_path / "page-numbers.json").write_text(json.dumps(summary))

            await screenshot(page, tmp_path / "page.png")

            # A phone-sized screen: one column, nothing wider than the screen.
            await page.set_viewport_size({"width": 390, "height": 844})
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
            await screenshot(page, tmp_path / "phone.png")

            # The server goes away (1001): the page says so, and reconnects with backoff once a
            # server is back on the same address, sending the source face again first.
            port = server.port  # close() forgets it
            await server.close()
            await expect(page.locator("#messages")).to_contain_text("going away", timeout=TIMEOUT_MS)
            await expect(page.locator("#messages")).to_contain_text("Reconnecting in")
            config = ServerConfig(host="127.0.0.1", port=0, codec_threads=2, frame_processors=("classic",))
            restarted = TestServer(create_app(config), host="127.0.0.1", port=port)
            await restarted.start_server()
            try:
                await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
                shown_before = int(await page.locator("#frames-shown").text_content())
                await page.wait_for_function(
                    f"Number(document.getElementById('frames-shown').textContent) > {shown_before + 5}",
                    timeout=TIMEOUT_MS,
                )
                async with http.get(restarted.make_url("/stats")) as response:
                    totals = await response.json()
                assert totals["frames_processed"] > 0 and totals["frames_passthrough"] == 0, totals
            finally:
                await restarted.close()
            assert not page_errors, page_errors
        finally:
            await context.close()


async def video_image(page) -> np.ndarray:
    """The frame the output <video> shows now."""
    data_url = await page.evaluate("""() => {
        const video = document.getElementById('output-video');
        const canvas = Object.assign(document.createElement('canvas'), {width: video.videoWidth, height: video.videoHeight});
        canvas.getContext('2d').drawImage(video, 0, 0);
        return canvas.toDataURL('image/png');
    }""")
    return media.decode(base64.b64decode(data_url.split(",", 1)[1]))


async def test_page_over_webrtc_with_the_microphone(start_server, http, chromium, camera_video, face_boxes, tmp_path):
    server = await start_server(frame_processors=("classic",))
    tone = write_wav(tmp_path / "tone.wav")
    async with async_playwright() as pw:
        context = await launch(pw, chromium, camera_video, tmp_path / "profile", microphone_file=tone,
                               viewport={"width": 1280, "height": 900})
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            await page.goto(str(server.make_url("/")))
            await expect(page.locator("#transport")).to_have_value("webrtc")  # the default where browsers have it
            await expect(page.locator(".badge")).to_have_text("Face-swapped video")
            await page.check("#microphone")
            await page.set_input_files("#face-file", TOM)
            await page.click("#connect")
            await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
            await expect(page.locator("#face-status")).to_contain_text("Source face set", timeout=TIMEOUT_MS)
            await page.wait_for_function(
                "Number(document.getElementById('frames-shown').textContent) > 20", timeout=TIMEOUT_MS
            )
            await page.wait_for_timeout(1500)  # VP8's bitrate ramps up from a low start
            faces, background = check_swapped(await video_image(page), face_boxes)
            assert background < 8.0, f"the video must show the camera picture: background change {background}"
            assert sum(change > 8.0 for change in faces) >= 4, f"the faces must be swapped: {faces}"
            assert await page.locator("#output").is_hidden()

            stats = await page.evaluate("facestream.peer.stats()")
            audio_in = [s for s in stats if s["type"] == "inbound-rtp" and s["kind"] == "audio"]
            assert audio_in and audio_in[0]["packetsReceived"] > 20, "the microphone's audio comes back"
            assert audio_in[0]["totalAudioEnergy"] > 0, "and it is the tone, not silence"
            async with http.get(server.make_url("/stats")) as response:
                served = await response.json()
            assert served["transports"]["webrtc"]["connected_clients"] == 1
            assert served["transports"]["webrtc"]["frames_processed"] > 20
            assert "websocket" not in served["transports"], "no JPEG frames besides the video track"
            await screenshot(page, tmp_path / "webrtc.png")

            await page.click("#disconnect")  # DELETE /whip/<id>: the server frees the slot at once
            for _ in range(50):
                async with http.get(server.make_url("/stats")) as response:
                    if (await response.json())["connected_clients"] == 0:
                        break
                await page.wait_for_timeout(100)
            else:
                raise AssertionError("the page's Disconnect did not end its WebRTC session on the server")
            assert not page_errors, page_errors
        finally:
            await context.close()


async def test_page_shows_the_servers_errors(start_server, chromium, camera_video, tmp_path):
    server = await start_server(frame_processors=("classic",))
    async with async_playwright() as pw:
        context = await launch(pw, chromium, camera_video, tmp_path / "profile")
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(str(server.make_url("/")))
            await page.click("#connect")  # over WebRTC, the default: errors and options on the data channel
            await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

            # A photo without a face: the confirmation's error is shown, and frames keep coming back.
            await page.set_input_files("#face-file", NO_FACE)
            await expect(page.locator("#face-status")).to_contain_text("No face", timeout=TIMEOUT_MS)
            await expect(page.locator("#face-status")).to_have_attribute("data-level", "error")
            await expect(page.locator("#messages")).to_contain_text("Source face refused: No face")
            await page.wait_for_function(
                "Number(document.getElementById('frames-shown').textContent) > 3", timeout=TIMEOUT_MS
            )

            # A live option from the page's controls is confirmed...
            await page.uncheck("#opt-many-faces")
            await expect(page.locator("#options-status")).to_contain_text("many faces off")
            # ...and an `error` message is shown with its code and text (an out-of-range option).
            await page.evaluate("facestream.sendJson({type: 'config', options: {opacity: 5}})")
            await expect(page.locator("#messages")).to_contain_text("Server error bad_config")
            await expect(page.locator("#messages")).to_contain_text("opacity")
            await expect(page.locator("#options-status")).to_contain_text("Refused")
            await screenshot(page, tmp_path / "errors.png")
        finally:
            await context.close()


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
async def test_page_sends_the_token_and_explains_a_refusal(start_server, chromium, camera_video, tmp_path, transport):
    server = await start_server(tokens=("s3cret",))
    async with async_playwright() as pw:
        context = await launch(pw, chromium, camera_video, tmp_path / "profile")
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(str(server.make_url("/")))  # the page itself needs no token
            await page.select_option("#transport", transport)
            await page.click("#connect")
            await expect(page.locator("#status")).to_contain_text("Could not connect", timeout=TIMEOUT_MS)
            await expect(page.locator("#messages")).to_contain_text("token")
            await expect(page.locator("#connect")).to_be_enabled()

            await page.fill("#token", "s3cret")  # WebSocket: as ?token= (no headers there); WebRTC: Bearer
            await page.click("#connect")
            await expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
            await expect(page.locator("body")).not_to_contain_text("s3cret")  # messages show URLs with token=***
        finally:
            await context.close()
