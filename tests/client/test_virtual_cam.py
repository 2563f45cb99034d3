"""--virtual-cam (pyvirtualcam with its devices faked by tests/client/virtualcam_runner.py,
as no kernel module or OBS is here) and --list-cameras (OpenCV's capture faked)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from typing import ClassVar

import cv2
import numpy as np
import pytest

from client.__main__ import main
from client.config import ClientConfig
from client.connection import StreamClient
from client.display import Display
from client.sources import SyntheticSource
from client.virtualcam import GAP_S, VirtualCamera, install_hint, placeholder
from tests import media
from tests.client.conftest import PASSTHROUGH, assert_one_line_error, run_client, until, ws_url

RUNNER = "tests.client.virtualcam_runner"


@pytest.fixture(scope="module")
def pyvirtualcam_installed() -> None:
    """The fakes register with the real pyvirtualcam; in CI its absence is a failure, elsewhere a skip."""
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        reason = "pyvirtualcam is not installed (pip install -e '.[virtualcam]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def bgr_fourcc() -> int:
    return int.from_bytes(b"24BG", "little")  # libyuv's FourCC of pyvirtualcam.PixelFormat.BGR


async def test_streams_a_video_headless_to_the_virtual_camera(pyvirtualcam_installed, start_server, face_path,
                                                              face_video, tmp_path):
    server = await start_server(**PASSTHROUGH)
    log = tmp_path / "frames.jsonl"
    run = await run_client(f"record:{log}", "-s", str(face_path), "--input", str(face_video), "--headless",
                           "--virtual-cam", "--width", "320", "--height", "240", "--server-url", ws_url(server),
                           module=RUNNER)
    assert run.returncode == 0, run
    received = run.summary()["received"]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1] == {"closed": True} and {"closed": True} not in records[:-1]
    frames = records[:-1]
    assert all((f["width"], f["height"], f["bytes"], f["fourcc"]) == (320, 240, 320 * 240 * 3, bgr_fourcc())
               for f in frames)
    # Fill-ins repeat the last processed frame (or the card before the first), so every
    # distinct picture but the card is one processed frame.
    card = hashlib.sha1(placeholder(320, 240).tobytes()).hexdigest()
    assert len({f["sha1"] for f in frames} - {card}) == received >= 1
    counts = re.search(r"(\d+) processed frames, (\d+) fill-in frames", run.stderr)
    assert counts, run.stderr
    assert int(counts[1]) == received and int(counts[1]) + int(counts[2]) == len(frames)


async def test_no_virtual_camera_device_is_one_line_and_a_failure(pyvirtualcam_installed, face_path):
    run = await run_client("missing", "-s", str(face_path), "--synthetic", "--headless", "--virtual-cam",
                           module=RUNNER)
    assert_one_line_error(run, "No virtual camera device found: install v4l2loopback-dkms and run "
                               "'sudo modprobe v4l2loopback' (")


async def test_without_pyvirtualcam_says_what_to_install(face_path):
    run = await run_client("uninstalled", "-s", str(face_path), "--synthetic", "--headless", "--virtual-cam",
                           module=RUNNER)
    assert_one_line_error(run, "pip install .[virtualcam]")


def test_install_hint_names_obs_outside_linux():
    assert "OBS Studio 30" in install_hint("Windows") and "OBS Studio 30" in install_hint("Darwin")
    assert "v4l2loopback-dkms" in install_hint("Linux")


class FakeCamera:
    device = "/dev/video-fake"

    def __init__(self) -> None:
        self.sent: list[np.ndarray] = []

    def send(self, frame: np.ndarray) -> None:
        self.sent.append(frame)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("fallback", ["last", "raw"])
def test_fill_in_between_processed_frames(fallback):
    camera = FakeCamera()
    virtual = VirtualCamera(camera, 64, 48, 30.0, fallback)
    raw = media.group_photo(128, 96)  # a camera frame, at another size
    processed = media.group_photo(64, 48)[::-1].copy()  # the server's answer
    assert virtual.needs_fill(0.0)  # nothing processed yet: fill at once
    virtual.fill(raw)
    resized_raw = cv2.resize(raw, (64, 48), interpolation=cv2.INTER_AREA)
    expected_first = resized_raw if fallback == "raw" else placeholder(64, 48)
    assert np.array_equal(camera.sent[-1], expected_first)
    virtual.send_processed(processed, now=10.0)
    assert np.array_equal(camera.sent[-1], processed)
    assert not virtual.needs_fill(10.0 + GAP_S / 2) and virtual.needs_fill(10.0 + GAP_S)
    virtual.fill(raw)
    assert np.array_equal(camera.sent[-1], expected_first if fallback == "raw" else processed)
    virtual.fill(None)  # no raw frame to be had (the source ended): the last processed frame
    assert np.array_equal(camera.sent[-1], processed)
    assert (virtual.processed, virtual.filled) == (1, 3)


async def test_the_virtual_camera_keeps_getting_frames_while_the_server_is_gone(start_server, face_path):
    """In-process: the server goes away mid-stream; while the client retries, the camera gets
    the last processed frame again at the stream's fps, never the card, never nothing."""
    server = await start_server(**PASSTHROUGH)
    camera = FakeCamera()
    virtual = VirtualCamera(camera, 160, 120, 30.0, "last")
    config = ClientConfig(source=face_path, server_url=ws_url(server), synthetic=True, width=160, height=120,
                          headless=True, reconnect_max_s=1.0)
    client = StreamClient(config, SyntheticSource(160, 120), Display(headless=True, virtual_cam=virtual),
                          face_path.read_bytes())
    run = asyncio.create_task(client.run())
    try:
        await until(lambda: virtual.processed >= 3, what="processed frames on the virtual camera")
        await server.close()
        processed, filled = virtual.processed, virtual.filled
        await until(lambda: virtual.filled >= filled + 10, what="fill-in frames while reconnecting")
    finally:
        client.stop()
        await asyncio.wait_for(run, 10)
    assert virtual.processed == processed and client.stats.reconnects == 0
    tail = camera.sent[-10:]
    assert all(np.array_equal(frame, tail[0]) for frame in tail)
    assert not np.array_equal(tail[0], placeholder(160, 120))


# ---- --list-cameras -------------------------------------------------------------------
class FakeCapture:
    """OpenCV's VideoCapture where only the indices in `cameras` exist."""

    cameras: ClassVar[dict[int, tuple[int, int]]] = {}

    def __init__(self, index: int) -> None:
        self.size = self.cameras.get(index)

    def isOpened(self) -> bool:
        return self.size is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        assert self.size is not None
        width, height = self.size
        return True, np.zeros((height, width, 3), np.uint8)

    def release(self) -> None:
        pass


def test_list_cameras_without_a_camera_says_so(monkeypatch, capsys):
    monkeypatch.setattr(FakeCapture, "cameras", {})
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    assert main(["--list-cameras"]) == 0
    assert capsys.readouterr().out == "No camera found (OpenCV tried indices 0 to 9).\n"


def test_list_cameras_prints_index_and_resolution(monkeypatch, capsys):
    monkeypatch.setattr(FakeCapture, "cameras", {0: (640, 480), 2: (1280, 720)})
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    assert main(["--list-cameras"]) == 0
    assert capsys.readouterr().out.splitlines() == ["0: 640x480  (--camera-index 0)", "2: 1280x720  (--camera-index 2)"]
