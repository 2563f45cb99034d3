"""The live stream's connections: hand over the source face, send and receive, reconnect.

One connection at a time. On each one the client sends its source face and waits for
`source_face_confirmation` before the first frame (a refused face ends the run: streaming
without it would only return the camera picture unchanged). Then a sender and a receiver
run side by side: the sender reads the source at its pace and sends a frame only when the
in-flight window (`flow.InFlightWindow`) has room, skipping the others; the receiver
settles the window from the answers' seq numbers and hands pictures to the `presenter`.

After the confirmation the client sends its live options (`controls.LiveControls`) as one
`config`, so every server it lands on applies them before the first frame; keys in the
window change them while streaming.

When and how soon to connect again is `reconnect.ReconnectPolicy`'s to say; this module
only tells it how each connection went. `--transport webrtc` runs the same client over a
peer connection instead (`webrtc_stream`). Opening a WebSocket and the wire formats live
in `transport`; waiting for a reply in `exchange`.

Blocking work runs on two single-thread executors, one per direction (the source's here:
OpenCV reads and JPEG encodes; the display's in `presenter`), so the event loop only moves
bytes and each resource is only ever touched by one thread.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
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

from .config import ClientConfig
from .controls import LiveControls
from .display import Display
from .errors import ConnectError, SourceFaceRejected
from .exchange import ConnectionEnded, NoReply, Receive, Send, ask, receive_message, request
from .flow import new_window, pace_s
from .images import decode_jpeg, encode_jpeg
from .presenter import Presenter
from .reconnect import Retry, reconnect_policy
from .sources import FrameSource, Pacer
from .stats import StreamStats
from .transport import connect, decode_message, send_message, sleep_unless_stopped

log = logging.getLogger(__name__)

STATS_TIMEOUT_S = 15.0

T = TypeVar("T")


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
        self.face = face
        self.stats = StreamStats()
        self.window = new_window(config, config.fps)
        self._pacer = None if source.realtime else Pacer(config.fps)
        self._stop = asyncio.Event()
        self._source_ended = False
        self.controls = LiveControls(config.options)
        self.presenter = Presenter(display, self.stats, self.controls, self._stop)
        self.send_control: Callable[[Message], Awaitable[None]] | None = None  # on the connection streaming now
        self.asked: Reconnect | None = None  # the server's request that ended the connection
        self.unconfirmed = ""  # why the last connection ended before the source face was confirmed
        self._latest_raw: np.ndarray | None = None  # the newest source frame, for --virtual-cam-fallback raw
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="source")

    # ---- control --------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def sleep(self, seconds: float) -> None:
        await sleep_unless_stopped(self._stop, seconds)

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
        pumps = self.presenter.start(self.press, self._raw_frame)
        try:
            async with aiohttp.ClientSession() as http:
                if self.config.transport == "webrtc":
                    from .webrtc_stream import stream_webrtc  # aiortc is imported only by those who use it
                    await stream_webrtc(self, http)
                else:
                    await self._connect_loop(http)
        finally:
            for task in pumps:
                task.cancel()
            results = await asyncio.gather(*pumps, return_exceptions=True)
            # Wait for any read/encode/record still running in a worker before the caller
            # releases the camera, the video writer or the virtual camera under it.
            self._reader.shutdown(wait=True)
            self.presenter.close()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def _connect_loop(self, http: aiohttp.ClientSession) -> None:
        policy = reconnect_policy(self.config)
        url = self.config.server_url
        while not self.stopping:
            ws = await self.unless_stopped(connect(http, self.config, policy, self._stop))
            if ws is None:
                return  # stopped while connecting
            confirmed = False
            received_before = self.stats.received
            try:
                send = functools.partial(send_message, ws, binary=self.config.binary)
                confirmed = bool(await self.unless_stopped(
                    self.hand_over_face(send, functools.partial(receive_message, ws), self.face)))
                if confirmed:
                    if policy.connected():
                        self.stats.reconnects += 1
                    await self._stream(ws)
            finally:
                await ws.close()
            if self.stopping:
                return
            asked, self.asked = self.asked, None
            delivered = self.stats.received > received_before
            unconfirmed = None if confirmed else f"{url} never confirmed the source face: {self.unconfirmed}"
            await self.retry_after(policy.ended(f"connection to {url} lost; reconnecting", delivered=delivered,
                                                asked=asked, unconfirmed=unconfirmed))

    async def retry_after(self, retry: Retry) -> None:
        """Say why and when the next connection goes, then wait until then (or a stop)."""
        log.warning("%s", retry.note)
        await self.sleep(retry.delay_s)

    async def hand_over_face(self, send: Send, receive: Receive, face: bytes) -> bool:
        """Send the source face and wait for its confirmation, on either transport: True once it
        is accepted (a refusal ends the run); False when the connection ended or no answer came
        in time (`unconfirmed` says which), or the server asked to reconnect (`asked`)."""
        try:
            answer = await request(send, receive, SourceFace(image=face), (SourceFaceConfirmation, Reconnect),
                                   self.config.confirm_timeout_s, self.handle_control)
        except NoReply as exc:
            self.unconfirmed = str(exc)
            log.warning("no source_face_confirmation within %.0f s", self.config.confirm_timeout_s)
            return False
        except ConnectionEnded as exc:
            self.unconfirmed = str(exc)
            log.warning("%s closed the connection before confirming the source face (%s)",
                        self.config.server_url, exc)
            return False
        if isinstance(answer, Reconnect):
            self.asked = answer
            return False
        return self.face_accepted(answer)

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

    async def _raw_frame(self) -> np.ndarray | None:
        """The camera's picture for the virtual camera's `raw` fill-in: the newest one read
        while a stream runs, else one read now."""
        if self.send_control is not None:
            return self._latest_raw
        return await self._in_thread(self._reader, self.source.read)

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
                self.asked = message
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
        """A processed frame came back, on either transport (`decode(data)` gives its picture):
        present it, and stop after --max-frames."""
        await self.presenter.show(decode, data)
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
        """The server's answer to the source face: True once accepted; a refusal ends the run."""
        SourceFaceRejected.unless_accepted(answer, f"source face {self.config.source}")
        log.info("source face accepted by %s", self.config.server_url)
        return True

    def _server_error(self, error: Error) -> None:
        self.stats.errors += 1
        about = f" (frame {error.seq})" if error.seq is not None else ""
        log.warning("server error %s: %s%s", error.code, error.message, about)
        self.window.settle(error.seq)

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

    def summary(self) -> str:
        return self.stats.summary(time.monotonic(), self.window.max_in_flight, self.window.limit)


async def fetch_stats(config: ClientConfig) -> dict[str, Any]:
    """`--stats`: one connection, one `stats_request`, the `stats` data (retrying the connect like a stream)."""
    async with aiohttp.ClientSession() as http:
        ws = await connect(http, config, reconnect_policy(config))
        assert ws is not None  # only a stop ends `connect` without a connection, and nothing stops this
        try:
            stats = await ask(ws, StatsRequest(), Stats, STATS_TIMEOUT_S, binary=False, on_other=_log_error)
        except NoReply:
            raise ConnectError(f"{config.server_url} sent no stats within {STATS_TIMEOUT_S:g} s") from None
        except ConnectionEnded:
            raise ConnectError(f"{config.server_url} closed the connection before sending its stats") from None
        finally:
            await ws.close()
    return stats.data


async def _log_error(message: Message) -> None:
    if isinstance(message, Error):
        log.warning("server error %s: %s", message.code, message.message)
