"""One benchmark client: a WebSocket stream paced by the same in-flight window as `python -m client`.

Every benchmark that streams (the latency probe, stream_bench, the soak test) drives its
clients through `StreamDriver`, so they all load the server the way a real client does:
at most K frames unanswered (`client.flow.InFlightWindow`), settled by the seq of each
answer, new frames skipped while the window is full. Connecting and decoding reuse
`client.transport`, and asking the server (the source face, its stats) `client.exchange`;
only the frame send is done here, to count its exact bytes.

A run is a series of phases (warm-up, measurement). Each phase ends by draining: no new
frames, wait until every frame sent is settled. Between phases nothing is in flight, so
the server's per-connection counters (`stats` -> `client`) read at that moment belong
exactly to the phases on either side, and answers are never credited to the wrong phase.
The answers are read by a receiver that runs only during a phase; between phases the
connection is read only by the request waiting for its reply.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import aiohttp

from client.config import ClientConfig
from client.errors import ConnectError, SourceFaceRejected
from client.exchange import ConnectionEnded, NoReply, ask
from client.flow import new_window, pace_s
from client.transport import decode_message, open_websocket
from protocol import (
    Error,
    Frame,
    Message,
    ProcessedFrame,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    encode,
)

log = logging.getLogger(__name__)

STATS_TIMEOUT_S = 15.0
SETTLE_S = 3.0  # how long the server may take to account for a drained client's last frames

# Called with (phase label, round-trip seconds) for every answer, e.g. to show progress.
AnswerHook = Callable[[str, float], None]


class ConnectionLost(ConnectError):
    """The server closed a benchmark connection mid-run."""


@dataclass
class PhaseCounts:
    """What one client saw during one phase, counted from the frames it sent then."""

    label: str
    first_seq: int
    started: float  # time.perf_counter()
    ended: float = 0.0  # when the drain finished
    sent: int = 0
    answered: int = 0
    skipped: int = 0  # paced frames not sent because the window was full (as the client skips them)
    errors: int = 0  # `error` messages from the server
    timeouts: int = 0  # frames settled by the clock: the server never answered them
    bytes_up: int = 0
    bytes_down: int = 0
    latencies_s: list[float] = field(default_factory=list, repr=False)  # answers while the client streamed
    # Answers that came after the phase's last send: those frames waited behind every other
    # client's last frame, which no live stream does; kept apart from the percentiles.
    drain_latencies_s: list[float] = field(default_factory=list, repr=False)
    draining: bool = False

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class StreamDriver:
    """Streams `frames` (JPEGs, looped) over one connection, phase by phase.

    `fps` paces the sends like the client's source (0: as fast as the window allows).
    Timestamps are `time.perf_counter()` values: the server echoes them untouched, and a
    monotonic clock gives round trips that a wall-clock step cannot corrupt.
    """

    def __init__(self, config: ClientConfig, frames: Sequence[bytes], fps: float,
                 on_answer: AnswerHook | None = None) -> None:
        if not frames:
            raise ValueError("a driver needs at least one frame")
        self.config = config
        self.frames = frames
        self.fps = fps
        self.window = new_window(config, fps)
        self._on_answer = on_answer
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._phase: PhaseCounts | None = None
        self._next_frame = 0
        self._settled = asyncio.Event()

    # ---- connection -------------------------------------------------------------
    async def connect(self, http: aiohttp.ClientSession) -> None:
        self._ws = await open_websocket(http, self.config)

    async def close(self) -> None:
        await self._stop_receiving()
        if self._ws is not None:
            await self._ws.close()

    @property
    def ws(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            raise RuntimeError("connect() first")
        return self._ws

    async def _request(self, message: Message, reply_type: type[Any], timeout_s: float) -> Any:
        """Send a control message and wait for the server's reply of `reply_type` (between phases)."""
        self._check_open()
        try:
            return await ask(self.ws, message, reply_type, timeout_s, binary=self.config.binary)
        except NoReply:
            raise ConnectError(
                f"{self.config.server_url} sent no {reply_type.__name__} within {timeout_s:g} s") from None
        except ConnectionEnded:
            raise self._lost() from None

    async def send_source(self, image: bytes, name: str = "source face") -> None:
        """Send the source face and wait for its confirmation, as the client does before streaming."""
        confirmation = await self._request(SourceFace(image=image), SourceFaceConfirmation,
                                           self.config.confirm_timeout_s)
        SourceFaceRejected.unless_accepted(confirmation, name)

    async def server_stats(self) -> dict[str, Any]:
        """The server's `stats`, once this connection has no frame in flight there (`data["client"]`).

        Called after a drain: every frame is settled on our side, but the server may count
        a superseded frame only when its batch returns, so ask again briefly until it agrees.
        """
        deadline = time.perf_counter() + SETTLE_S
        while True:
            stats = await self._request(StatsRequest(), Stats, STATS_TIMEOUT_S)
            if stats.data.get("client", {}).get("frames_in_flight", 0) == 0 or time.perf_counter() >= deadline:
                return stats.data
            await asyncio.sleep(0.05)

    # ---- streaming ----------------------------------------------------------------
    async def stream(self, seconds: float, label: str = "measure") -> PhaseCounts:
        """Send frames for `seconds`, then drain; returns what this phase's frames met."""
        phase = PhaseCounts(label=label, first_seq=self.window.next_seq(), started=time.perf_counter())
        timeouts_before = self.window.timeouts
        self._phase = phase
        self._receiver = asyncio.create_task(self._receive_loop(), name="driver-receive")
        try:
            await self._send_until(phase, phase.started + seconds)
            phase.draining = True
            await self._drain()
        finally:
            await self._stop_receiving()
        phase.ended = time.perf_counter()
        phase.timeouts = self.window.timeouts - timeouts_before
        return phase

    async def _send_until(self, phase: PhaseCounts, deadline: float) -> None:
        """Send as a camera at `fps` would (0: a new frame whenever one can go) until `deadline`.

        A camera frame goes when it is captured if the window (and the server's pace) allows,
        and is skipped otherwise, as the client does: what is sent is always fresh."""
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        next_tick = time.perf_counter()
        while (now := time.perf_counter()) < deadline:
            if period and now < next_tick:
                await asyncio.sleep(next_tick - now)
                continue
            if period:
                next_tick = now if now - next_tick > period else next_tick + period  # no burst after a stall
            if self.window.can_send(now):
                await self._send_frame(phase, now)
            elif period:
                phase.skipped += 1
            else:  # no camera: wait for an answer, or for the pace or a timeout to free the window
                chance = self.window.next_chance(now)
                self._settled.clear()
                try:
                    await asyncio.wait_for(self._settled.wait(), max(0.0, min(deadline, chance or deadline) - now))
                except asyncio.TimeoutError:
                    pass

    async def _send_frame(self, phase: PhaseCounts, captured_at: float) -> None:
        self._check_open()
        jpeg = self.frames[self._next_frame % len(self.frames)]
        self._next_frame += 1
        frame = Frame(jpeg=jpeg, timestamp=captured_at, seq=self.window.next_seq())
        data, binary = encode(frame, self.config.binary)
        # Book the frame before the send: its answer may arrive before send returns.
        self.window.sent(time.perf_counter())
        phase.sent += 1
        phase.bytes_up += len(data)
        await self.ws.send_frame(data, aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT)

    async def _drain(self) -> None:
        """Wait until every frame sent is answered, superseded, failed or timed out."""
        while self.window.in_flight:
            self._check_open()
            self._settled.clear()
            try:
                await asyncio.wait_for(self._settled.wait(), self.window.timeout_s)
            except asyncio.TimeoutError:
                pass
            self.window.expire(time.perf_counter())

    def _check_open(self) -> None:
        if self.ws.closed:
            raise self._lost()

    def _lost(self) -> ConnectionLost:
        return ConnectionLost(f"{self.config.server_url} closed the connection (code {self.ws.close_code})")

    # ---- receiving ------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        try:
            async for raw in self.ws:
                message = decode_message(raw)
                if isinstance(message, ProcessedFrame):
                    self._on_frame(message, len(raw.data))
                elif isinstance(message, Error):
                    self._on_error(message)
        finally:
            self._settled.set()  # wake a sender or drain waiting for room, to notice the close

    async def _stop_receiving(self) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None

    def _on_frame(self, message: ProcessedFrame, size: int) -> None:
        now = time.perf_counter()
        self.window.settle(message.seq, pace_s(message.pace_ms))
        self._settled.set()
        phase = self._phase
        # An answer about an older phase's frame can only be one the clock already gave up on.
        if phase is None or message.seq is None or message.seq < phase.first_seq:
            return
        latency = now - float(message.timestamp)
        phase.answered += 1
        phase.bytes_down += size
        (phase.drain_latencies_s if phase.draining else phase.latencies_s).append(latency)
        if self._on_answer is not None:
            self._on_answer(phase.label, latency)

    def _on_error(self, error: Error) -> None:
        self.window.settle(error.seq)
        self._settled.set()
        if self._phase is not None:
            self._phase.errors += 1
            if self._phase.errors == 1:  # one line per phase: a broken pipeline errs on every frame
                log.warning("server error %s: %s (frame %s); further errors are only counted",
                            error.code, error.message, error.seq)


async def drive_client(url: str, jpeg: bytes, binary: bool, stop_at: float, rtts: list[float]) -> int:
    """Stream one JPEG as fast as a window of 2 allows until `stop_at` (`time.perf_counter()`).

    No source face (frames come back unchanged unless the server has a default one).
    Appends each round trip in seconds to `rtts`; returns the frames answered.
    """
    driver = StreamDriver(ClientConfig(server_url=url, binary=binary), [jpeg], fps=0)
    async with aiohttp.ClientSession() as http:
        await driver.connect(http)
        try:
            phase = await driver.stream(stop_at - time.perf_counter())
        finally:
            await driver.close()
    rtts.extend(phase.latencies_s + phase.drain_latencies_s)
    return phase.answered
