"""The network half of the client: connect, hand over the source face, stream, reconnect.

One connection at a time. On each one the client sends its source face and waits for
`source_face_confirmation` before the first frame (a refused face ends the run: streaming
without it would only return the camera picture unchanged). Then a sender and a receiver
run side by side: the sender reads the source at its pace and sends a frame only when the
in-flight window (`flow.InFlightWindow`) has room, skipping the others; the receiver
settles the window from the answers' seq numbers and hands pictures to the display.

After the confirmation the client sends its live options (`controls.LiveControls`) as one
`config`, so every server it lands on applies them before the first frame; keys in the
window change them while streaming.

When the connection drops the client reconnects with `backoff.Backoff` forever, but the
very first connection gets only `connect_retries` retries: a wrong URL should fail in
seconds with a clear line, not spin. A server that is draining sends `reconnect`: that is
an instruction, not a failure, so the client reconnects after the delay it names (at
once for 0) without growing the backoff; if that attempt fails (a draining server answers
503 until it exits) the backoff loop takes over. Only one such request per connection that
delivered frames skips the backoff, so a server repeating it cannot make the client spin.

Blocking work (OpenCV reads, JPEG encode/decode, video writing, the virtual camera) runs
on two single-thread executors, one per direction, so the event loop only moves bytes and
each resource is only ever touched by one thread. Opening a connection and the wire
formats live in `transport`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
import cv2
import numpy as np

from protocol import (
    ConfigConfirmation,
    Error,
    ErrorCode,
    Frame,
    Message,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
)

from .backoff import Backoff, ConnectRetries
from .config import ClientConfig
from .controls import LiveControls
from .display import Display
from .errors import ClientError, ConnectError, SourceFaceRejected
from .flow import new_window, pace_s
from .sources import FrameSource, Pacer
from .stats import StreamStats
from .transport import (
    RetryableConnectError,
    close_description,
    decode_message,
    open_websocket,
    send_message,
)
from .virtualcam import VirtualCamera

log = logging.getLogger(__name__)

STATS_TIMEOUT_S = 15.0
CONNECTION_ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR)

T = TypeVar("T")


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class _Disconnected(Exception):
    """The current connection ended; reconnect."""


class StreamClient:
    """Streams `source` to the server until stopped, the source ends or `max_frames` arrive.

    `stop()` may be called from a signal handler or the GUI; `run()` then returns after
    closing the connection. The numbers live in `stats` and `window` for the summary.
    """

    def __init__(self, config: ClientConfig, source: FrameSource, display: Display, face: bytes) -> None:
        self.config = config
        self.source = source
        self.display = display
        self.face = face
        self.stats = StreamStats()
        self.window = new_window(config, config.fps)
        self._pacer = None if source.realtime else Pacer(config.fps)
        self._stop = asyncio.Event()
        self._source_ended = False
        self._closed_before_confirmation = ""
        self.controls = LiveControls(config.options)
        self.send_control: Callable[[Message], Awaitable[None]] | None = None  # on the connection streaming now
        self._reconnect: Reconnect | None = None  # the server's request that ended the connection
        self._latest_raw: np.ndarray | None = None  # the newest source frame, for --virtual-cam-fallback raw
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="source")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="display")

    # ---- control --------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when stopped (so Ctrl-C during a backoff is instant)."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def unless_stopped(self, coro: Awaitable[T]) -> T | None:
        """Await `coro` unless `stop()` comes first (then cancel it and return None), so
        Ctrl-C is never stuck behind a connect timeout or a slow confirmation."""
        task = asyncio.ensure_future(coro)
        stopper = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task in done:
            await asyncio.gather(stopper, return_exceptions=True)
            return task.result()
        task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
        return None

    async def _in_thread(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # ---- the run --------------------------------------------------------------
    async def run(self) -> None:
        helpers = []
        if not self.display.headless:
            helpers.append(asyncio.create_task(self._pump_gui(), name="client-gui"))
        if self.display.virtual_cam is not None:
            helpers.append(asyncio.create_task(self._feed_virtual_cam(self.display.virtual_cam), name="client-vcam"))
        try:
            async with aiohttp.ClientSession() as http:
                if self.config.transport == "webrtc":
                    from .webrtc_stream import stream_webrtc  # aiortc is imported only by those who use it
                    await stream_webrtc(self, http)
                else:
                    await self._connect_loop(http)
        finally:
            for task in helpers:
                task.cancel()
            results = await asyncio.gather(*helpers, return_exceptions=True)
            # Wait for any read/encode/record still running in a worker before the caller
            # releases the camera, the video writer or the virtual camera under it.
            self._reader.shutdown(wait=True)
            self._writer.shutdown(wait=True)
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def _connect_loop(self, http: aiohttp.ClientSession) -> None:
        backoff = Backoff(max_s=self.config.reconnect_max_s)
        retries = ConnectRetries(self.config.connect_retries)
        free_reconnect = True  # the next `reconnect` request may skip the backoff
        while not self.stopping:
            try:
                ws = await self.unless_stopped(open_websocket(http, self.config))
            except RetryableConnectError as exc:
                await self.sleep(retries.retry_delay(str(exc), backoff))
                continue
            if ws is None:
                return  # stopped while connecting
            confirmed = False
            received_before = self.stats.received
            try:
                confirmed = bool(await self.unless_stopped(self._confirm_source(ws)))
                if confirmed:
                    if retries.connected_once:
                        self.stats.reconnects += 1
                    retries.connected()
                    await self._stream(ws)
            finally:
                await ws.close()
            if self.stopping:
                return
            useful = self.stats.received > received_before
            if useful:
                backoff.reset()  # the connection was useful: try again at once
                free_reconnect = True
            asked, self._reconnect = self._reconnect, None
            if asked is not None and free_reconnect:
                free_reconnect = False  # neither a failure nor a backoff step
                await self.follow_reconnect(asked)
                continue
            if not confirmed:
                retries.failed(f"{self.config.server_url} never confirmed the source face: "
                               f"{self._closed_before_confirmation}")
            if useful:
                log.warning("connection to %s lost; reconnecting", self.config.server_url)
            else:  # it dropped before any frame came back: do not hammer a server in trouble
                delay = backoff.next_delay()
                log.warning("connection to %s lost; reconnecting in %.1f s", self.config.server_url, delay)
                await self.sleep(delay)

    async def _confirm_source(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Send the source face and wait for its confirmation; False if the connection dropped."""
        await send_message(ws, SourceFace(image=self.face), self.config.binary)
        deadline = time.monotonic() + self.config.confirm_timeout_s
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._closed_before_confirmation = f"no answer within {self.config.confirm_timeout_s:g} s"
                log.warning("no source_face_confirmation within %.0f s", self.config.confirm_timeout_s)
                return False
            try:
                raw = await ws.receive(timeout=remaining)
            except asyncio.TimeoutError:
                continue
            if raw.type in CONNECTION_ENDED:
                self._closed_before_confirmation = close_description(ws, raw)
                log.warning("%s closed the connection before confirming the source face (%s)",
                            self.config.server_url, self._closed_before_confirmation)
                return False
            message = decode_message(raw)
            if isinstance(message, SourceFaceConfirmation):
                return self.face_accepted(message)
            if isinstance(message, Reconnect):
                self._reconnect = message
                return False
            if isinstance(message, Error):
                self._server_error(message)
        return False

    async def follow_reconnect(self, asked: Reconnect) -> None:
        """Wait as long as the server asked (never longer than --reconnect-max), then go on."""
        reason = asked.reason or "no reason given"
        delay = min(max(asked.delay_ms, 0) / 1000, self.config.reconnect_max_s)
        if delay > 0:
            log.warning("server asked to reconnect (%s); reconnecting in %.1f s as asked", reason, delay)
            await self.sleep(delay)
        else:
            log.warning("server asked to reconnect (%s); reconnecting now", reason)

    async def _stream(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send the live options, then send and receive on one connection until it drops,
        the server asks to reconnect, or the run is stopped."""
        self.window.reset()
        try:
            await send_message(ws, self.controls.on_connect(), binary=False)
        except (ConnectionError, aiohttp.ClientError):
            return  # gone already: reconnect
        self.send_control = lambda message: send_message(ws, message, binary=False)
        sender = asyncio.create_task(self._send_loop(ws), name="client-send")
        receiver = asyncio.create_task(self._receive_loop(ws), name="client-receive")
        stopper = asyncio.create_task(self._stop.wait(), name="client-stop")
        pending = {sender, receiver, stopper}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done or receiver in done:
                    break
                if sender in done and sender.exception() is not None:
                    break  # the send failed: the connection is gone (or a bug, re-raised below)
                # else the source ended: keep receiving the answers still in flight
        finally:
            self.send_control = None
            for task in (sender, receiver, stopper):
                task.cancel()
            results = await asyncio.gather(sender, receiver, stopper, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, (asyncio.CancelledError, _Disconnected, ConnectionError, aiohttp.ClientError)
            ):
                raise result

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            if self._pacer is not None:
                await asyncio.sleep(self._pacer.delay(loop.time()))
            image = await self.read_source()
            if image is None:
                self._source_end()
                return
            if not self.window.can_send(time.monotonic()):
                self.stats.skipped += 1  # read and dropped: the picture stays at most K frames old
                continue
            jpeg = await self._in_thread(self._reader, encode_jpeg, image, self.config.quality)
            if ws.closed:
                raise _Disconnected()
            frame = Frame(jpeg=jpeg, timestamp=time.time(), seq=self.window.next_seq())
            # Book the frame before the send: its answer may arrive before send returns.
            now = time.monotonic()
            self.window.sent(now)
            self.stats.frame_sent(now)
            await send_message(ws, frame, self.config.binary)

    async def read_source(self) -> np.ndarray | None:
        """The source's next frame (None at its end), read in the source's thread."""
        image = await self._in_thread(self._reader, self.source.read)
        if image is not None:
            self._latest_raw = image
        return image

    def _source_end(self) -> None:
        """The video ended: wait for the frames in flight (at most the frame timeout), then stop."""
        self._source_ended = True
        log.info("%s ended", self.source.description)
        if self.window.in_flight == 0:
            self.stop()
        else:
            asyncio.get_running_loop().call_later(self.config.frame_timeout_s, self.stop)

    async def _receive_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for raw in ws:
            message = decode_message(raw)
            if isinstance(message, ProcessedFrame):
                await self._on_frame(message)
            elif isinstance(message, Reconnect):
                self._reconnect = message
                return
            elif message is not None:
                await self.handle_control(message)
            if self._source_ended and self.window.in_flight == 0:
                self.stop()
            if self.stopping:
                return
        log.info("connection closed (code %s)", ws.close_code)

    async def _on_frame(self, message: ProcessedFrame) -> None:
        latency = time.time() - message.timestamp if isinstance(message.timestamp, (int, float)) else None
        self.window.settle(message.seq, pace_s(message.pace_ms))
        self.stats.frame_received(time.monotonic(), latency)
        await self.show(decode_jpeg, message.jpeg)

    async def show(self, decode: Callable[[Any], np.ndarray | None], data: Any) -> None:
        """A processed frame came back (`decode(data)` gives its picture, in the display's
        thread): record it, show it, and stop after --max-frames."""
        if self.display.wants_images:
            image = await self._in_thread(self._writer, self._decode_and_record, decode, data)
            if image is not None:
                self.display.show(image, self.overlay_lines())
        if self.config.max_frames is not None and self.stats.received >= self.config.max_frames:
            self.stop()

    async def handle_control(self, message: Message) -> None:
        """Any message but a processed frame or `reconnect`, on either transport."""
        if isinstance(message, Error):
            self._server_error(message)
            if message.code == ErrorCode.BAD_CONFIG:
                follow_up = self.controls.refused(message.message)
                if follow_up is not None and self.send_control is not None:
                    await self.send_control(follow_up)
        elif isinstance(message, ConfigConfirmation):
            self.controls.confirmed(message.options)
        elif isinstance(message, Stats):
            log.info("server stats: %s", json.dumps(message.data, sort_keys=True))
        elif isinstance(message, SourceFaceConfirmation):
            self.face_accepted(message)

    def face_accepted(self, answer: SourceFaceConfirmation) -> bool:
        """The server's answer to the source face, on either transport: True once accepted; a
        refusal ends the run (streaming without it would only return the camera unchanged)."""
        if answer.status != "success":
            raise SourceFaceRejected(f"The server refused the source face {self.config.source}: "
                                     f"{answer.message or 'no reason given'}")
        log.info("source face accepted by %s", self.config.server_url)
        return True

    def _decode_and_record(self, decode: Callable[[Any], np.ndarray | None], data: Any) -> np.ndarray | None:
        image = decode(data)
        if image is None:
            log.warning("the server sent a frame that is not a decodable JPEG")
            return None
        self.display.record(image)
        return image

    def _server_error(self, error: Error) -> None:
        self.stats.errors += 1
        about = f" (frame {error.seq})" if error.seq is not None else ""
        log.warning("server error %s: %s%s", error.code, error.message, about)
        self.window.settle(error.seq)

    def overlay_lines(self) -> list[str]:
        now = time.monotonic()
        latency = self.stats.last_latency_ms()
        return [
            "FACE-SWAPPED",
            f"{self.stats.recent_fps(now):.1f} fps",
            f"latency {latency:.0f} ms" if not math.isnan(latency) else "latency -",
            f"skipped {self.stats.skipped}",
            *self.controls.overlay_lines(),
        ]

    async def press(self, key: str) -> None:
        """A key pressed in the window: what `controls` makes of it goes to the server.

        Changes made while no connection is up are kept and sent on the next one."""
        message = self.controls.press(key)
        send = self.send_control
        if message is not None and send is not None:
            try:
                await send(message)
            except (ConnectionError, aiohttp.ClientError):
                pass  # the connection just dropped; the change goes out with the next one

    async def _pump_gui(self) -> None:
        """Keep the window responsive (and notice q/Esc and the control keys) even while no frames arrive."""
        while not self.stopping:
            if self.display.poll():
                self.stop()
            keys = self.display.take_keys()
            for key in keys:
                await self.press(key)
            if keys:
                self.display.redraw(self.overlay_lines())
            await asyncio.sleep(0.03)

    async def _feed_virtual_cam(self, camera: VirtualCamera) -> None:
        """While no processed frames come (start-up, reconnects, a stalled server), keep the
        virtual camera fed at the stream's fps: call apps give up on a camera that goes quiet.
        With the `raw` fallback and no stream running, this reads the source itself."""
        try:
            while not self.stopping:
                await asyncio.sleep(camera.period)
                if not camera.needs_fill(time.monotonic()):
                    continue
                raw = None
                if camera.fallback == "raw":
                    streaming = self.send_control is not None
                    raw = self._latest_raw if streaming else await self._in_thread(self._reader, self.source.read)
                await self._in_thread(self._writer, camera.fill, raw)
        except ClientError:
            self.stop()
            raise

    def summary(self) -> str:
        return self.stats.summary(time.monotonic(), self.window.max_in_flight, self.window.limit)


async def fetch_stats(config: ClientConfig) -> dict[str, Any]:
    """`--stats`: one connection, one `stats_request`, the `stats` data (retrying the connect like a stream)."""
    backoff = Backoff(max_s=config.reconnect_max_s)
    retries = ConnectRetries(config.connect_retries)
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                ws = await open_websocket(http, config)
                break
            except RetryableConnectError as exc:
                await asyncio.sleep(retries.retry_delay(str(exc), backoff))
        try:
            await send_message(ws, StatsRequest(), binary=False)
            deadline = time.monotonic() + STATS_TIMEOUT_S
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    raw = await ws.receive(timeout=remaining)
                except asyncio.TimeoutError:
                    break
                if raw.type in CONNECTION_ENDED:
                    raise ConnectError(f"{config.server_url} closed the connection before sending its stats")
                message = decode_message(raw)
                if isinstance(message, Stats):
                    return message.data
                if isinstance(message, Error):
                    log.warning("server error %s: %s", message.code, message.message)
            raise ConnectError(f"{config.server_url} sent no stats within {STATS_TIMEOUT_S:g} s")
        finally:
            await ws.close()
