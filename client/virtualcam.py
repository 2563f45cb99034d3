"""`--virtual-cam`: the processed stream as a webcam that video-call apps can pick.

pyvirtualcam is an optional extra (`pip install .[virtualcam]`); it drives v4l2loopback on
Linux and OBS's virtual camera on Windows and macOS. Failing to open it is one line that
says what to install, never a traceback.

A call app treats a camera that stops delivering frames as broken (some show black, some
freeze, some drop the camera). Processed frames stop at start-up, on a reconnect and when
the server stalls, so after `GAP_S` without one the client fills in at the stream's fps
with the last processed frame (`last`, the default: your own face never shows) or the raw
camera picture (`raw`: the call sees you unswapped rather than a still picture). Before the
first processed frame `last` has nothing to repeat and shows a plain "connecting" card.
All sends happen on one worker thread (the caller's), one at a time.
"""
from __future__ import annotations

import logging
import math
import platform
from typing import Any

import cv2
import numpy as np

from .errors import ClientError
from .sources import fit

log = logging.getLogger(__name__)

FALLBACKS = ("last", "raw")
GAP_S = 0.5  # longer than any normal gap between processed frames, short enough to look live


def install_hint(system: str | None = None) -> str:
    """What to install for a virtual camera device on this operating system."""
    if (system or platform.system()) == "Linux":
        return "install v4l2loopback-dkms and run 'sudo modprobe v4l2loopback'"
    return "install OBS Studio 30 or newer (on macOS, then click Start and Stop Virtual Camera in OBS once)"


def placeholder(width: int, height: int) -> np.ndarray:
    """The card shown before the first processed frame when the fallback is `last`."""
    card = np.full((height, width, 3), 32, np.uint8)
    cv2.putText(card, "facestream: connecting", (max(8, width // 2 - 130), height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                0.7, (200, 200, 200), 1, cv2.LINE_AA)
    return card


class VirtualCamera:
    """A pyvirtualcam camera at the stream's size and fps, fed processed frames and fill-ins."""

    def __init__(self, camera: Any, width: int, height: int, fps: float, fallback: str) -> None:
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        self._camera = camera
        self.device: str = camera.device
        self.width, self.height, self.fallback = width, height, fallback
        self.period = 1.0 / fps
        self.processed = 0  # processed frames sent
        self.filled = 0  # fill-in frames sent (last, raw or the card)
        self._last = placeholder(width, height)  # what `last` repeats until a processed frame came
        self._last_processed_at = -math.inf  # so the fill-in starts at once

    @classmethod
    def open(cls, device: str | None, width: int, height: int, fps: float, fallback: str) -> VirtualCamera:
        """Open the device (`None`: the first one found); `ClientError` with what to install if none."""
        try:
            import pyvirtualcam
        except ImportError:
            raise ClientError("--virtual-cam needs pyvirtualcam, which is not installed: "
                              "pip install .[virtualcam] (in the facestream folder)") from None
        try:
            camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=device)
        except RuntimeError as exc:  # pyvirtualcam's, one line per backend it tried
            reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            which = f"virtual camera {device}" if device else "virtual camera device"
            raise ClientError(f"No {which} found: {install_hint()} ({reason})") from None
        opened = cls(camera, width, height, fps, fallback)
        log.info("virtual camera %s: %dx%d at %g fps (fill-in: %s frame)", opened.device, width, height, fps, fallback)
        return opened

    def send_processed(self, image: np.ndarray, now: float) -> None:
        self._last = fit(image, self.width, self.height)
        self._last_processed_at = now
        self._send(self._last)
        self.processed += 1

    def needs_fill(self, now: float) -> bool:
        """True when no processed frame came for `GAP_S` (or none ever)."""
        return now - self._last_processed_at >= GAP_S

    def fill(self, raw: np.ndarray | None) -> None:
        """Send the fill-in frame: the raw picture when asked for and given, else the last processed frame."""
        self._send(fit(raw, self.width, self.height) if self.fallback == "raw" and raw is not None else self._last)
        self.filled += 1

    def _send(self, frame: np.ndarray) -> None:
        try:
            self._camera.send(frame)
        except (RuntimeError, OSError) as exc:  # a device unplugged or unloaded mid-stream
            raise ClientError(f"The virtual camera {self.device} stopped taking frames: {exc}") from None

    def close(self) -> None:
        self._camera.close()
        log.info("virtual camera %s: %d processed frames, %d fill-in frames", self.device, self.processed, self.filled)
