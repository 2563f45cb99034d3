"""What the user sees of a live stream: the window with its overlay and keys, the recording
and the virtual camera.

`StreamClient` hands each processed frame to `show`: it is decoded, recorded and sent to the
virtual camera on the presenter's own thread (each of those resources is only ever touched
by that one), then drawn in the window on the event loop's thread, which owns the GUI. Two
pumps run beside the connections for the whole run: the window's keeps it responsive and
reads its keys even while no frames come; the virtual camera's fills in while no processed
frames come, at the stream's fps, because call apps give up on a camera that goes quiet.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

import numpy as np

from .controls import LiveControls
from .display import Display
from .errors import ClientError
from .stats import StreamStats
from .virtualcam import VirtualCamera

log = logging.getLogger(__name__)

GUI_POLL_S = 0.03
Press = Callable[[str], Awaitable[None]]  # a key pressed in the window
RawFrame = Callable[[], Awaitable["np.ndarray | None"]]  # the camera's picture, for the `raw` fill-in


class Presenter:
    """Shows, records and feeds the virtual camera; `stop` is set when the user quits (q, Esc,
    the window closed) or the virtual camera fails."""

    def __init__(self, display: Display, stats: StreamStats, controls: LiveControls, stop: asyncio.Event) -> None:
        self.display = display
        self._stats = stats
        self._controls = controls
        self._stop = stop
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="display")

    def start(self, press: Press, raw_frame: RawFrame) -> list[asyncio.Task[None]]:
        """The pumps this display needs (none when headless without a virtual camera)."""
        pumps = []
        if not self.display.headless:
            pumps.append(asyncio.create_task(self._pump_window(press), name="client-gui"))
        if self.display.virtual_cam is not None:
            pumps.append(asyncio.create_task(self._feed_virtual_cam(self.display.virtual_cam, raw_frame),
                                             name="client-vcam"))
        return pumps

    def close(self) -> None:
        """Wait for a decode, recording or virtual camera send still running, before the caller
        releases the video writer or the virtual camera under it."""
        self._thread.shutdown(wait=True)

    async def show(self, decode: Callable[[Any], np.ndarray | None], data: Any) -> None:
        """A processed frame came back: `decode(data)` gives its picture."""
        if not self.display.wants_images:
            return
        image = await self._in_thread(self._decode_and_record, decode, data)
        if image is not None:
            self.display.show(image, self.overlay_lines())

    def overlay_lines(self) -> list[str]:
        now = time.monotonic()
        latency = self._stats.last_latency_ms()
        return [
            "FACE-SWAPPED",
            f"{self._stats.recent_fps(now):.1f} fps",
            f"latency {latency:.0f} ms" if not math.isnan(latency) else "latency -",
            f"skipped {self._stats.skipped}",
            *self._controls.overlay_lines(),
        ]

    def _decode_and_record(self, decode: Callable[[Any], np.ndarray | None], data: Any) -> np.ndarray | None:
        image = decode(data)
        if image is None:
            log.warning("the server sent a frame that is not a decodable JPEG")
            return None
        self.display.record(image)
        return image

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _pump_window(self, press: Press) -> None:
        """Keep the window responsive (and notice q/Esc and the control keys) even while no frames arrive."""
        while not self._stop.is_set():
            if self.display.poll():
                self._stop.set()
            keys = self.display.take_keys()
            for key in keys:
                await press(key)
            if keys:
                self.display.redraw(self.overlay_lines())
            await asyncio.sleep(GUI_POLL_S)

    async def _feed_virtual_cam(self, camera: VirtualCamera, raw_frame: RawFrame) -> None:
        """While no processed frames come (start-up, reconnects, a stalled server), keep the
        virtual camera fed at the stream's fps; with the `raw` fallback, with `raw_frame()`."""
        try:
            while not self._stop.is_set():
                await asyncio.sleep(camera.period)
                if not camera.needs_fill(time.monotonic()):
                    continue
                raw = await raw_frame() if camera.fallback == "raw" else None
                await self._in_thread(camera.fill, raw)
        except ClientError:
            self._stop.set()
            raise
