"""The client's WebRTC media: its camera as an aiortc video track, paced at the stream's fps.

aiortc's encoder asks the track for a frame whenever it is ready for one, so the camera is
read on demand (in a worker thread) and never queues: a slow link or encoder means frames
are not read rather than read and left waiting.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from protocol.webrtc import VIDEO_CLOCK

Read = Callable[[], Awaitable[np.ndarray | None]]  # the next BGR frame, None at the end of the source


class CameraTrack(MediaStreamTrack):
    """Frames from `read`, at most `fps` a second, stamped with when they were read."""

    kind = "video"

    def __init__(self, read: Read, fps: float) -> None:
        super().__init__()
        self._read = read
        self._period = 1.0 / fps
        self._started = time.monotonic()
        self._next_at = self._started
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        wait = self._next_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_at = max(self._next_at + self._period, time.monotonic())
        image = await self._read()
        if image is None:
            self.stop()
            raise MediaStreamError
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = round((time.monotonic() - self._started) / VIDEO_CLOCK)
        frame.time_base = VIDEO_CLOCK
        self.sent += 1
        return frame
