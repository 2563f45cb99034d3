"""The processed stream's destinations: an OpenCV window with an overlay, a video file and
a virtual camera.

The window is optional (`--headless` for servers, CI and tests); every OpenCV GUI call
sits behind that switch, because on a machine without a display Qt aborts the whole
process instead of raising. The recording and the virtual camera get the frames without
the overlay: they are the processed stream itself, not a screenshot of the window.
"""
from __future__ import annotations

import collections
import logging
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .errors import UsageError
from .media import VideoWriter
from .virtualcam import VirtualCamera

MILLISECONDS = Fraction(1, 1000)

log = logging.getLogger(__name__)

WINDOW_NAME = "facestream: face-swapped video"  # the window says what it shows, in any screenshot of it
QUIT_KEYS = {ord("q"), ord("Q"), 27}  # q or Esc


def draw_overlay(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A copy of `image` with `lines` in the top-left corner on a dark band (readable on any picture)."""
    shown = image.copy()
    if not lines:
        return shown
    font, scale, thickness, pad = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1, 6
    sizes = [cv2.getTextSize(line, font, scale, thickness)[0] for line in lines]
    line_height = max(h for _, h in sizes) + pad
    band_w = min(shown.shape[1], max(w for w, _ in sizes) + 2 * pad)
    band_h = min(shown.shape[0], line_height * len(lines) + pad)
    region = shown[:band_h, :band_w]
    region[:] = (region * 0.4).astype(np.uint8)
    for i, line in enumerate(lines):
        y = pad + line_height * (i + 1) - pad // 2
        cv2.putText(shown, line, (pad, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return shown


def has_display() -> bool:
    """Whether an OpenCV window can be opened (Linux needs an X11 or Wayland display)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Recorder:
    """Writes the processed stream at its size with the video jobs' writer (H.264), each frame
    at the moment it came back, so the recording plays at the pace the stream had."""

    def __init__(self, path: Path, width: int, height: int, fps: float, crf: int, preset: str) -> None:
        if not path.parent.is_dir():
            raise UsageError(f"Cannot record to {path}: folder {path.parent} does not exist")
        self.path, self.size = path, (width, height)
        self._writer = VideoWriter(path, width, height, MILLISECONDS, Fraction(fps).limit_denominator(1000), crf, preset)
        self.frames = 0
        self._started: float | None = None
        self._last_pts = -1

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        now = time.monotonic()
        self._started = now if self._started is None else self._started
        pts = max(self._last_pts + 1, round((now - self._started) * 1000))  # strictly increasing, in ms
        self._writer.write(image, pts)
        self._last_pts = pts
        self.frames += 1

    def close(self) -> None:
        self._writer.close(complete=True)
        log.info("recorded %d frames to %s", self.frames, self.path)


class Display:
    """Shows frames in a window (unless headless), records them and feeds the virtual
    camera (when asked); collects the keys pressed in the window for the live controls."""

    def __init__(self, headless: bool, recorder: Recorder | None = None,
                 virtual_cam: VirtualCamera | None = None) -> None:
        if not headless and not has_display():
            raise UsageError("No display found (DISPLAY is not set): run with --headless")
        self.headless = headless
        self.recorder = recorder
        self.virtual_cam = virtual_cam
        self.quit_requested = False
        self._window_open = False
        self._keys: collections.deque[str] = collections.deque()
        self._shown: np.ndarray | None = None  # the last picture, to redraw with a new overlay

    @property
    def wants_images(self) -> bool:
        """Whether processed JPEGs need decoding at all (headless without recording or virtual camera: no)."""
        return not self.headless or self.recorder is not None or self.virtual_cam is not None

    def record(self, image: np.ndarray) -> None:
        """Blocking write to the recording and the virtual camera; from one worker thread at a time."""
        if self.recorder is not None:
            self.recorder.write(image)
        if self.virtual_cam is not None:
            self.virtual_cam.send_processed(image, time.monotonic())

    def show(self, image: np.ndarray, overlay: Sequence[str]) -> None:
        """Draw `image` with its overlay; must run on the thread that owns the GUI (the loop's)."""
        if self.headless:
            return
        self._shown = image
        cv2.imshow(WINDOW_NAME, draw_overlay(image, overlay))
        self._window_open = True
        self.poll()

    def redraw(self, overlay: Sequence[str]) -> None:
        """Show the last picture again with a new overlay (a key's effect shows even while no frames come)."""
        if self._shown is not None:
            self.show(self._shown, overlay)

    def poll(self) -> bool:
        """Pump the GUI's events; True once q or Esc was pressed (or the window was closed).
        Other keys wait in `take_keys()`."""
        if self.headless or not self._window_open:
            return self.quit_requested
        key = cv2.waitKey(1)
        if key >= 0 and (key & 0xFF) in QUIT_KEYS:
            self.quit_requested = True
        elif key >= 0:
            self._keys.append(chr(key & 0xFF))
        elif cv2.getWindowProperty(WINDOW_NAME, cv2.WND_PROP_VISIBLE) < 1:
            self.quit_requested = True  # the user closed the window
        return self.quit_requested

    def take_keys(self) -> list[str]:
        """The keys pressed since the last call, oldest first."""
        keys = list(self._keys)
        self._keys.clear()
        return keys

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.virtual_cam is not None:
            self.virtual_cam.close()
        if self._window_open:
            cv2.destroyAllWindows()
            self._window_open = False
