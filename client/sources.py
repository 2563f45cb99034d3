"""Where frames come from: a camera, a video file, a still image, or a generated pattern.

All sources share one small interface (`read()` returns the next BGR frame at the
requested size, or None at the end) so the streaming loop never branches on the kind.
A camera paces itself (`read()` blocks until the sensor delivers); the others are paced
by `Pacer` at `--fps`, so a file plays at camera speed instead of as fast as it decodes.
Reads are blocking OpenCV calls: the caller runs them in a worker thread.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import SourceOpenError, UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _quiet_opencv() -> None:
    """OpenCV prints its own multi-line warnings when a camera or file fails to open;
    the client reports those failures itself in one line."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # very old builds lack cv2.utils.logging
        pass


def fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to the stream size when needed (every frame of a stream has one size, which
    keeps the server's work and the recording's frame size constant)."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


class FrameSource(Protocol):
    realtime: bool  # True when read() itself waits for the next frame (a camera)
    description: str

    def read(self) -> np.ndarray | None:
        """The next frame (BGR, the stream size), or None when there are no more."""

    def close(self) -> None:
        ...


class CameraSource:
    """An OpenCV camera; the requested size and fps are hints the driver may round."""

    realtime = True

    def __init__(self, index: int, width: int, height: int, fps: float) -> None:
        _quiet_opencv()
        self.description = f"camera {index}"
        self.width, self.height = width, height
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceOpenError(f"Failed to start camera {index}")
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._capture.set(cv2.CAP_PROP_FPS, fps)
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self._capture.release()
            raise SourceOpenError(f"Failed to start camera {index}")
        self._first: np.ndarray | None = frame

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                log.warning("%s stopped delivering frames", self.description)
                return None
        return fit(frame, self.width, self.height)

    def close(self) -> None:
        self._capture.release()


class VideoFileSource:
    """A video file, played once or looped (`--loop`)."""

    realtime = False

    def __init__(self, path: Path, width: int, height: int, loop: bool) -> None:
        _quiet_opencv()
        self.description = f"video {path}"
        self.width, self.height, self.loop = width, height, loop
        self._capture = cv2.VideoCapture(str(path))
        ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or frame is None:
            self._capture.release()
            raise SourceOpenError(f"Cannot read video file {path}")
        self._first: np.ndarray | None = frame

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return fit(frame, self.width, self.height)
        ok, frame = self._capture.read()
        if not ok and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return fit(frame, self.width, self.height)

    def close(self) -> None:
        self._capture.release()


class ImageSource:
    """A still image sent again and again (a camera that never moves)."""

    realtime = False

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.description = f"image {path}"
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceOpenError(f"Cannot read image file {path}")
        self._frame = fit(image, width, height)

    def read(self) -> np.ndarray | None:
        return self._frame

    def close(self) -> None:
        pass


class SyntheticSource:
    """A moving test pattern with the frame number drawn in: streams with no camera or file."""

    realtime = False

    def __init__(self, width: int, height: int) -> None:
        self.description = "synthetic pattern"
        ys, xs = np.mgrid[0:height, 0:width]
        self._base = np.dstack(
            [(xs * 255 // max(width - 1, 1)), (ys * 255 // max(height - 1, 1)), ((xs + ys) % 256)]
        ).astype(np.uint8)
        self._index = 0

    def read(self) -> np.ndarray | None:
        frame = np.roll(self._base, self._index * 4, axis=1)
        cv2.putText(frame, str(self._index), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        self._index += 1
        return frame

    def close(self) -> None:
        pass


MAX_CAMERA_INDEX = 10  # OpenCV has no camera enumeration: --list-cameras tries indices 0..9


def list_cameras(max_index: int = MAX_CAMERA_INDEX) -> list[tuple[int, int, int]]:
    """(index, width, height) of every camera OpenCV can open and read a frame from.

    A virtual camera (v4l2loopback) is listed too: it is a camera to every app.
    """
    _quiet_opencv()
    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            if ok and frame is not None:
                found.append((index, frame.shape[1], frame.shape[0]))
        finally:
            capture.release()
    return found


def open_source(
    *,
    camera_index: int,
    input_path: Path | None,
    synthetic: bool,
    width: int,
    height: int,
    fps: float,
    loop: bool,
) -> FrameSource:
    """Open the source the command line asked for (an input file wins over the camera)."""
    if synthetic:
        return SyntheticSource(width, height)
    if input_path is not None:
        if not input_path.is_file():
            raise UsageError(f"Input file not found: {input_path}")
        if input_path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageSource(input_path, width, height)
        return VideoFileSource(input_path, width, height, loop)
    return CameraSource(camera_index, width, height, fps)


class Pacer:
    """Spaces reads `1/fps` apart. After a stall it restarts from now rather than bursting
    to catch up: a burst would only be skipped by the in-flight window anyway."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self._next: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before the next read, and book that read's slot."""
        if self._next is None or now - self._next > self.period:
            self._next = now
        wait = max(0.0, self._next - now)
        self._next += self.period
        return wait
