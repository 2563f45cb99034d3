"""Frame sources and the display/recording side, on real files made from real faces."""
from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from client.config import ClientConfig
from client.display import Display, Recorder, draw_overlay
from client.errors import SourceOpenError, UsageError
from client.sources import CameraSource, ImageSource, SyntheticSource, VideoFileSource, fit, open_source
from tests import media

DEFAULTS = ClientConfig()


def read_all(source) -> list[np.ndarray]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
        assert len(frames) < 1000
    return frames


def test_video_file_plays_once_at_the_stream_size(tmp_path):
    source = VideoFileSource(media.write_video(tmp_path / "v.mp4", 5, 320, 240), width=640, height=480, loop=False)
    frames = read_all(source)
    source.close()
    assert len(frames) == 5
    assert all(frame.shape == (480, 640, 3) for frame in frames)
    assert not source.realtime


def test_video_file_loops(tmp_path):
    source = VideoFileSource(media.write_video(tmp_path / "v.mp4", 3, 320, 240), width=320, height=240, loop=True)
    frames = [source.read() for _ in range(7)]
    source.close()
    assert all(frame is not None for frame in frames)
    # frame 3 is frame 0 again
    assert np.abs(frames[3].astype(np.int16) - frames[0]).mean() < 1.0
    assert np.abs(frames[1].astype(np.int16) - frames[0]).mean() > 0.0


def test_still_image_repeats(tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), media.group_photo())
    source = ImageSource(path, 320, 240)
    first, second = source.read(), source.read()
    assert first.shape == (240, 320, 3) and np.array_equal(first, second)


def test_synthetic_frames_move():
    source = SyntheticSource(64, 48)
    first, second = source.read(), source.read()
    assert first.shape == (48, 64, 3) and not np.array_equal(first, second)


def test_fit_resizes_only_when_needed():
    image = media.group_photo(320, 240)
    assert fit(image, 320, 240) is image
    assert fit(image, 160, 120).shape == (120, 160, 3)


def test_open_source_picks_the_kind(tmp_path):
    video = media.write_video(tmp_path / "v.mp4", 2, 320, 240)
    image = tmp_path / "still.jpg"
    cv2.imwrite(str(image), media.group_photo())
    common = dict(camera_index=0, synthetic=False, width=320, height=240, fps=30.0, loop=False)
    assert isinstance(open_source(input_path=video, **common), VideoFileSource)
    assert isinstance(open_source(input_path=image, **common), ImageSource)
    assert isinstance(open_source(**{**common, "synthetic": True}, input_path=None), SyntheticSource)


def test_source_errors_are_one_line(tmp_path):
    common = dict(camera_index=0, synthetic=False, width=320, height=240, fps=30.0, loop=False)
    with pytest.raises(UsageError, match="Input file not found"):
        open_source(input_path=tmp_path / "missing.mp4", **common)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    with pytest.raises(SourceOpenError, match="Cannot read video file"):
        open_source(input_path=garbage, **common)
    bad_image = tmp_path / "bad.jpg"
    bad_image.write_bytes(b"\xff\xd8 nope")
    with pytest.raises(SourceOpenError, match="Cannot read image file"):
        open_source(input_path=bad_image, **common)


def test_missing_camera_fails_clearly():
    with pytest.raises(SourceOpenError, match="^Failed to start camera 99$"):
        CameraSource(99, 640, 480, 30.0)


def test_overlay_draws_on_a_copy():
    image = media.group_photo(320, 240)
    shown = draw_overlay(image, ["12.0 fps", "latency 40 ms", "skipped 3"])
    assert shown.shape == image.shape
    assert not np.array_equal(shown[:40, :120], image[:40, :120])  # the band is there
    assert np.array_equal(shown[200:, 200:], image[200:, 200:])  # the rest untouched
    assert np.array_equal(image, media.group_photo(320, 240))  # input unchanged


def test_recorder_writes_a_readable_video_of_the_stream_size(tmp_path):
    path = tmp_path / "out.mp4"
    recorder = Recorder(path, 320, 240, 30.0, DEFAULTS.crf, DEFAULTS.preset)
    for index in range(7):
        recorder.write(media.numbered_frame(index, 640, 480))  # resized to the stream size
    recorder.close()
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 7
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    capture.release()


def test_recorder_into_a_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        Recorder(tmp_path / "nope" / "out.mp4", 320, 240, 30.0, DEFAULTS.crf, DEFAULTS.preset)


def test_headless_display_needs_no_screen(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    display = Display(headless=True)
    assert not display.wants_images
    display.show(media.group_photo(), ["x"])  # a no-op, no GUI call
    assert display.poll() is False
    display.close()


def test_a_window_without_a_screen_is_refused(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UsageError, match="--headless"):
        Display(headless=False)


class FakeGui:
    """Stands in for OpenCV's window calls (no display here): records frames, presses q on cue,
    and each key of `press` once, when that many frames were shown."""

    def __init__(self, quit_after: int, press: dict[int, str] | None = None) -> None:
        self.shown: list[np.ndarray] = []
        self.quit_after = quit_after
        self.press = dict(press or {})
        self.destroyed = False

    def wait_key(self, delay: int) -> int:
        if len(self.shown) >= self.quit_after:
            return ord("q")
        due = [at for at in self.press if len(self.shown) >= at]
        return ord(self.press.pop(min(due))) if due else -1

    def install(self, monkeypatch) -> None:
        monkeypatch.setenv("DISPLAY", ":99")
        monkeypatch.setattr(cv2, "imshow", lambda name, image: self.shown.append(image))
        monkeypatch.setattr(cv2, "waitKey", self.wait_key)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
        monkeypatch.setattr(cv2, "destroyAllWindows", lambda: setattr(self, "destroyed", True))


def test_window_shows_frames_and_quits_on_q(monkeypatch):
    gui = FakeGui(quit_after=2)
    gui.install(monkeypatch)
    display = Display(headless=False)
    assert display.wants_images and display.poll() is False  # no window yet: no GUI call
    display.show(media.group_photo(), ["30.0 fps"])
    assert display.quit_requested is False
    display.show(media.group_photo(), ["30.0 fps"])
    assert display.quit_requested is True
    display.close()
    assert gui.destroyed and len(gui.shown) == 2


async def test_stream_client_shows_overlaid_frames_until_q(monkeypatch, start_server, face_path):
    """The windowed path in-process: frames reach the window with the overlay, q stops the run."""
    from client.config import ClientConfig
    from client.connection import StreamClient
    from tests.client.conftest import ws_url

    gui = FakeGui(quit_after=5)
    gui.install(monkeypatch)
    server = await start_server(frame_processors=("passthrough",))
    config = ClientConfig(source=face_path, server_url=ws_url(server), synthetic=True, width=320, height=240)
    display = Display(headless=False)
    client = StreamClient(config, SyntheticSource(320, 240), display, face_path.read_bytes())
    await asyncio.wait_for(client.run(), timeout=20)
    display.close()
    assert client.stopping and len(gui.shown) >= 5
    assert gui.shown[0].shape == (240, 320, 3)
    lines = client.presenter.overlay_lines()
    assert lines[0] == "FACE-SWAPPED"  # the window says what it shows
    assert lines[1].endswith(" fps") and lines[2].startswith("latency ") and lines[3].startswith("skipped ")
    assert client.window.max_in_flight <= 2


async def test_keys_pressed_in_the_window_change_the_options(monkeypatch, start_server, face_path):
    """The window's own path: a key read by cv2.waitKey becomes a `config`, the server's
    confirmation reaches the overlay, and `h` puts the key list on screen."""
    from client.config import ClientConfig
    from client.connection import StreamClient
    from tests.client.conftest import ws_url

    gui = FakeGui(quit_after=40, press={3: "f", 4: "h"})
    gui.install(monkeypatch)
    drawn: list[list[str]] = []  # the overlay of every picture shown
    monkeypatch.setattr("client.display.draw_overlay", lambda image, lines: drawn.append(list(lines)) or image)
    server = await start_server(frame_processors=("passthrough",))
    config = ClientConfig(source=face_path, server_url=ws_url(server), synthetic=True, width=320, height=240)
    display = Display(headless=False)
    client = StreamClient(config, SyntheticSource(320, 240), display, face_path.read_bytes())
    await asyncio.wait_for(client.run(), timeout=20)
    display.close()
    assert not gui.press, "every key was read"
    assert client.controls.effective["many_faces"] is False
    assert len(drawn) == len(gui.shown)
    assert "h: keys" in drawn[0] and not any("many faces off" in line for line in drawn[0])
    assert any("many faces off" in line for line in drawn[-1]) and "f  every face / the largest only" in drawn[-1]
