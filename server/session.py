"""One connected client: its one-slot mailbox in, its latest-result slot out, its counters.

Latest-frame-wins on both sides keeps memory and latency bounded whatever the client
does: a client that sends faster than the device can go loses old frames (counted as
superseded), and a client that reads slower than we produce loses old results.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import WSMsgType, web

from models.options import OptionError, merged
from models.processors import MappedFace
from protocol import (
    Config,
    ConfigConfirmation,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    PairStatus,
    Error,
    ErrorCode,
    Frame,
    Message,
    Ping,
    Pong,
    ProcessedFrame,
    ProtocolError,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
)

from .limits import check_source_size
from .pipeline import FrameWork
from .processors import FrameContext
from .stats import FrameCounts, ServerStats

if TYPE_CHECKING:
    from .batcher import Batcher

log = logging.getLogger(__name__)

CONTROL_BACKLOG = 32  # unsent control messages before we stop reading from the client


@dataclass
class FrameJob:
    """A received frame waiting for, or in, a batch."""

    frame: Frame
    binary: bool
    received_at: float  # time.monotonic()
    reply_timestamp: Any  # the client's timestamp, or the server's time if it sent none
    take_index: int = 0
    passthrough: bool = False


SourcePreparer = Callable[[bytes], "asyncio.Future[dict[str, object]]"]
FaceMapPreparer = Callable[[tuple[FacePair, ...]], "asyncio.Future[list[MappedFace | ProtocolError]]"]


@dataclass(frozen=True)
class SessionLimits:
    max_fps: float  # a client's frames are taken at most this often; the rest are superseded
    max_source_bytes: int


class ClientSession:
    def __init__(
        self,
        client_id: int,
        ws: web.WebSocketResponse,
        stats: ServerStats,
        batcher: "Batcher",
        prepare_sources: SourcePreparer,
        prepare_face_map: FaceMapPreparer,
        default_sources: dict[str, object] | None,
        default_options: dict[str, Any],
        limits: SessionLimits,
    ) -> None:
        self.client_id = client_id
        self.ws = ws
        self.frames = FrameCounts()
        self._stats = stats
        self._batcher = batcher
        self._prepare_sources = prepare_sources
        self._prepare_face_map = prepare_face_map
        self._face_map: tuple[MappedFace, ...] = ()
        self._sources = default_sources
        self.options = dict(default_options)
        self.processor_state: dict[str, Any] = {}  # lives as long as the connection
        self.pending: FrameJob | None = None
        self._outbox: tuple[FrameJob, bytes] | None = None
        self._control: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._control_drained = asyncio.Event()
        self._takes = 0
        self._newest_result = -1
        self.closed = False
        self.limits = limits
        self._next_take_at = 0.0  # time.monotonic() before which the batcher may not take a frame
        self.last_activity = time.monotonic()
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{client_id}")

    # ---- accounting -------------------------------------------------------------
    def _count(self, outcome: str) -> None:
        setattr(self.frames, outcome, getattr(self.frames, outcome) + 1)
        setattr(self._stats.frames, outcome, getattr(self._stats.frames, outcome) + 1)

    # ---- inbound ----------------------------------------------------------------
    async def handle(self, kind: WSMsgType, data: bytes) -> None:
        """Dispatch one WebSocket message; a bad one gets an `error`, never a disconnect."""
        self.last_activity = time.monotonic()
        try:
            message = decode_binary(data) if kind == WSMsgType.BINARY else decode_json(data)
            await self._dispatch(message, binary=kind == WSMsgType.BINARY)
        except ProtocolError as exc:
            if exc.about == "frame":  # a frame we could not parse is still received, and failed
                self._count("received")
                self._count("failed")
            await self.send_error(exc)

    async def _dispatch(self, message: Message, binary: bool) -> None:
        if isinstance(message, Frame):
            self._offer(message, binary)
        elif isinstance(message, SourceFace):
            await self._set_source(message.image)
        elif isinstance(message, StatsRequest):
            await self.send_control(Stats(data={**self._stats.snapshot(), "client": self.frames.as_dict()}))
        elif isinstance(message, Ping):
            await self.send_control(Pong(timestamp=time.time()))
        elif isinstance(message, FaceMap):
            await self._set_face_map(message.pairs)
        elif isinstance(message, Config):
            try:
                self.options = merged(self.options, message.options)
            except OptionError as exc:
                raise ProtocolError(ErrorCode.BAD_CONFIG, f"option {exc}; nothing was changed") from None
            await self.send_control(ConfigConfirmation(status="success", options=dict(self.options)))
        else:
            raise ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, f"a client may not send {type(message).__name__} messages")

    def _offer(self, frame: Frame, binary: bool) -> None:
        self._count("received")
        job = FrameJob(
            frame=frame,
            binary=binary,
            received_at=time.monotonic(),
            reply_timestamp=frame.timestamp if frame.timestamp is not None else time.time(),
        )
        if self.pending is not None:
            self._count("superseded")
            self.pending = job
            return
        self.pending = job
        delay = self._next_take_at - job.received_at
        if delay > 0:  # over the frame-rate cap: wait in the mailbox, where newer frames replace it
            asyncio.get_running_loop().call_later(delay, self._release)
        else:
            self._batcher.mark_ready(self)

    def _release(self) -> None:
        if self.pending is not None and not self.closed:
            self._batcher.mark_ready(self)

    def take(self) -> tuple[FrameJob, FrameWork]:
        """Called by the batcher: empty the mailbox into a unit of batch work."""
        job, self.pending = self.pending, None
        assert job is not None
        self._next_take_at = time.monotonic() + 1.0 / self.limits.max_fps
        job.take_index = self._takes
        self._takes += 1
        job.passthrough = self._sources is None and not self._face_map
        context = FrameContext(client_id=self.client_id, sources=self._sources or {}, options=self.options,
                               face_map=self._face_map, state=self.processor_state, time=job.received_at)
        return job, FrameWork(jpeg=job.frame.jpeg, seq=job.frame.seq, context=context)

    def _refusal(self, exc: Exception, what: str) -> ProtocolError:
        """The error to report for a failed preparation; a processor bug must not end the connection."""
        if not isinstance(exc, ProtocolError):
            log.error("preparing client %s's %s failed", self.client_id, what, exc_info=exc)
            exc = ProtocolError(ErrorCode.PROCESSING_FAILED, f"the server failed to prepare this {what}")
        self._stats.errors[exc.code.value] += 1
        return exc

    async def _set_source(self, image: bytes) -> None:
        try:
            check_source_size(image, self.limits.max_source_bytes)
            self._sources = await self._prepare_sources(image)
        except Exception as exc:  # noqa: BLE001 - see _refusal
            await self.send_control(SourceFaceConfirmation(status="error", message=self._refusal(exc, "face").message))
            return
        notes = [getattr(source, "note", "") for source in self._sources.values()]
        message = "; ".join(["Source face set", *filter(None, notes)])
        await self.send_control(SourceFaceConfirmation(status="success", message=message))

    async def _set_face_map(self, pairs: tuple[FacePair, ...]) -> None:
        """All pairs are checked; the map replaces the previous one only if every pair is usable."""
        try:
            results = await self._prepare_face_map(pairs)
        except Exception as exc:  # noqa: BLE001 - see _refusal
            message = self._refusal(exc, "face map").message
            await self.send_control(FaceMapConfirmation(status="error", message=message))
            return
        statuses = tuple(
            PairStatus("error", r.message) if isinstance(r, ProtocolError) else PairStatus("success", "")
            for r in results
        )
        refused = [r for r in results if isinstance(r, ProtocolError)]
        if refused:
            for error in refused:
                self._stats.errors[error.code.value] += 1
            message = f"{len(refused)} of {len(pairs)} pairs refused; the face map was not changed"
            await self.send_control(FaceMapConfirmation(status="error", message=message, pairs=statuses))
            return
        self._face_map = tuple(r for r in results if not isinstance(r, ProtocolError))
        await self.send_control(FaceMapConfirmation(status="success", message=f"{len(pairs)} faces mapped",
                                                    pairs=statuses))

    # ---- outbound ---------------------------------------------------------------
    def complete(self, job: FrameJob, work: FrameWork) -> None:
        """Called on the loop when a batch returns with this client's frame."""
        if self.closed:
            self._count("failed")
            return
        if work.error is not None:
            self._count("failed")
            error = self._error_message(work.error)
            if len(self._control) < CONTROL_BACKLOG:  # a client that does not read is told no more
                self.queue_control(error)
            return
        if job.take_index < self._newest_result:
            self._count("superseded")  # a newer frame of ours already came back
            return
        self._newest_result = job.take_index
        if self._outbox is not None:
            self._count("superseded")  # the client has not drained the previous result
        assert work.result is not None
        self._outbox = (job, work.result)
        self._wake.set()

    def _error_message(self, error: ProtocolError) -> Error:
        self._stats.errors[error.code.value] += 1
        return Error(code=error.code.value, message=error.message, seq=error.seq)

    async def send_error(self, error: ProtocolError) -> None:
        await self.send_control(self._error_message(error))

    def queue_control(self, message: Message) -> None:
        """Queue a control message without waiting (server-initiated: errors, reconnect)."""
        self._control.append(encode_json(message))
        self._wake.set()

    async def send_control(self, message: Message) -> None:
        """Queue a JSON control message; waits (stops reading the client) while its backlog is full."""
        while len(self._control) >= CONTROL_BACKLOG and not self.closed:
            self._control_drained.clear()
            await self._control_drained.wait()
        if not self.closed:
            self.queue_control(message)

    def _reply_bytes(self, job: FrameJob, jpeg: bytes) -> tuple[bytes, WSMsgType]:
        reply = ProcessedFrame(jpeg=jpeg, timestamp=job.reply_timestamp, seq=job.frame.seq)
        if job.binary:
            return encode_binary(reply), WSMsgType.BINARY
        return encode_json(reply), WSMsgType.TEXT

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while not self.closed:
                    if self._control:
                        data = self._control.popleft()
                        self._control_drained.set()
                        await self.ws.send_frame(data, WSMsgType.TEXT)
                    elif self._outbox is not None:
                        job, jpeg = self._outbox
                        self._outbox = None
                        data, opcode = self._reply_bytes(job, jpeg)
                        try:
                            await self.ws.send_frame(data, opcode)
                        except BaseException:  # gone, or cancelled by close(): the frame ends here
                            self._count("failed")
                            raise
                        self._count("processed")
                        if job.passthrough:
                            self._count("passthrough")
                        self._stats.record_delivery(time.monotonic() - job.received_at)
                    else:
                        break
        except ConnectionError:
            log.debug("client %s went away while we were sending", self.client_id)

    async def close(self) -> None:
        """Account for everything left behind and stop the sender."""
        self.closed = True
        self._control_drained.set()
        self._batcher.forget(self)
        if self.pending is not None:
            self.pending = None
            self._count("failed")
        if self._outbox is not None:
            self._outbox = None
            self._count("failed")
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
