"""One client's session without sockets: its mailbox in, its results and control messages out, its counters.

The way `websockets` keeps its protocol free of I/O: bytes in, actions and bytes out, the
time given by the caller. The WebSocket session (`session.py`) is a thin shell over it
that reads the socket, runs the slow preparations, and writes what `next_outgoing` gives;
another transport can be a second shell over the same core. The batcher sees a client only
through `take` and `complete`.

Latest-frame-wins on both sides keeps memory and latency bounded whatever the client does:
a client that sends faster than the device can go loses old frames (counted as superseded),
and a client that reads slower than we produce loses old results. A job (a video file,
docs/protocol.md "Jobs") wants every frame instead: its frames queue in order, up to
`JOB_QUEUE` not yet answered, beyond which the shell stops reading the client, and its results
go back in order. Every frame received ends as processed, superseded or failed, here and in
the server's totals.
"""
from __future__ import annotations

import collections
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from models.frame import FrameContext, MappedFace
from protocol import (
    MAX_PACE_MS,
    Config,
    ConfigConfirmation,
    Error,
    ErrorCode,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    Frame,
    Message,
    PairStatus,
    Ping,
    Pong,
    ProcessedFrame,
    ProtocolError,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    decode,
    encode,
    encode_json,
)
from protocol.options import OPTIONS, Option, OptionError, merged

from .errors import reported
from .limits import check_source_size
from .pipeline import Encoder, BatchItem, Pixels
from .stats import FrameCounts, ServerStats

log = logging.getLogger(__name__)

CONTROL_BACKLOG = 32  # unsent control messages before the shell stops reading from the client
JOB_QUEUE = 32  # a job's frames received and not yet answered before the shell stops reading it
_STATS = object()  # a `stats` answer waiting in the control queue, made when it is sent


@dataclass
class FrameJob:
    """A received frame waiting for, or in, a batch."""

    frame: Frame
    binary: bool
    received_at: float  # the caller's monotonic clock
    reply_timestamp: Any  # the client's timestamp, or the server's wall time if it sent none
    order: int = 0  # place among this client's taken frames
    taken_at: float = 0.0
    passthrough: bool = False
    pixels: Pixels | None = None  # a frame its transport decoded (then `frame.jpeg` is empty)


@dataclass(frozen=True)
class SessionLimits:
    max_fps: float  # a client's frames are taken at most this often; the rest are superseded
    max_source_bytes: int
    photos_per_minute: float = 60.0  # photos a client may have prepared (a face map pair is two)


@dataclass
class PhotoBudget:
    """A token bucket of photos to prepare: each costs a detection or two and its decoding,
    off the loop but on the same cores and device as everyone's frames, so one client that
    sends face maps in a loop cannot take them from the rest. Starts full."""

    per_minute: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, photos: int, now: float) -> float:
        """0 when `photos` may be prepared now (and charged); else seconds until they may."""
        if self.tokens < 0:
            self.tokens = self.per_minute
        self.tokens = min(self.per_minute, self.tokens + (now - self.updated) * self.per_minute / 60)
        self.updated = now
        if photos <= self.tokens:
            self.tokens -= photos
            return 0.0
        return (photos - self.tokens) * 60 / self.per_minute

@dataclass(frozen=True)
class ReadyAt:
    """The mailbox holds a frame the batcher may take from `time` on (later under the rate cap);
    `queued`: one more of a job's frames, which wait their turn behind each other."""

    time: float
    queued: bool = False


@dataclass(frozen=True)
class PrepareSource:
    """The shell must prepare this source photo off the loop, then call `source_prepared`."""

    image: bytes


@dataclass(frozen=True)
class PrepareFaceMap:
    """The shell must prepare these pairs off the loop, then call `face_map_prepared`."""

    pairs: tuple[FacePair, ...]


Action = ReadyAt | PrepareSource | PrepareFaceMap | None


@dataclass(frozen=True)
class Outgoing:
    """One WebSocket message to send; `job` is set for a processed frame (counted once sent)."""

    data: bytes
    binary: bool
    job: FrameJob | None = None


@dataclass
class SessionCore:
    client_id: int
    stats: ServerStats
    limits: SessionLimits
    sources: dict[str, object] | None = None  # processor name -> prepared source (None: passthrough)
    options: dict[str, Any] = field(default_factory=dict)
    option_table: Mapping[str, Option] = field(default_factory=lambda: OPTIONS)  # the server's (options.for_server)
    frames: FrameCounts = field(default_factory=FrameCounts)
    face_map: tuple[MappedFace, ...] = ()
    processor_state: dict[str, Any] = field(default_factory=dict)  # lives as long as the connection
    # A paced client (docs/protocol.md, "Pacing"): seconds after sending a frame (received_at,
    # taken_at) that the next one should be sent; None for clients that did not ask.
    pace: Callable[[float, float], float] | None = None
    job: bool = False  # every frame queued and answered in order (docs/protocol.md, "Jobs")
    transport: str = "websocket"  # counted apart in the stats
    media_track: bool = False  # frames come decoded on the transport's own track (`offer_pixels`), not as messages
    encode_result: Encoder | None = None  # results in the transport's own form (None: JPEG)
    last_activity: float = 0.0
    closed: bool = False
    pending: collections.deque[FrameJob] = field(default_factory=collections.deque)  # live: at most one
    _outbox: FrameJob | None = None  # live: the newest result, not yet sent
    _result: object = b""
    _job_results: dict[int, tuple[FrameJob, object | None]] = field(default_factory=dict)  # order -> result (None: failed)
    _released: int = 0  # job: the order of the next result to send
    _control: collections.deque[bytes | object] = field(default_factory=collections.deque)  # bytes, or _STATS
    _takes: int = 0
    _newest_result: int = -1
    _next_take_at: float = 0.0  # before this the batcher may not take a frame (the rate cap)
    _photos: PhotoBudget | None = None

    # ---- accounting ---------------------------------------------------------------
    def _count(self, outcome: str) -> None:
        for counts in (self.frames, self.stats.frames, self.stats.transport_frames[self.transport]):
            setattr(counts, outcome, getattr(counts, outcome) + 1)

    # ---- inbound ------------------------------------------------------------------
    def receive(self, data: bytes, binary: bool, now: float, wall_time: float) -> Action:
        """One message from the client. A bad one is answered with an `error`, never a disconnect."""
        self.last_activity = now
        try:
            message = decode(data, binary)
            return self._dispatch(message, binary, now, wall_time)
        except ProtocolError as exc:
            if exc.message_type == "frame":  # a frame we could not parse is still received, and failed
                self._count("received")
                self._count("failed")
            self.send_error(exc)
            return None

    def _dispatch(self, message: Message, binary: bool, now: float, wall_time: float) -> Action:
        if isinstance(message, Frame):
            if self.media_track:
                raise ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, f"frames travel on the {self.transport} video track, "
                                    "not as messages")
            return self._offer(message, binary, now, wall_time)
        if isinstance(message, SourceFace):
            try:
                check_source_size(message.image, self.limits.max_source_bytes)
                self._charge_photos(1, now)
            except ProtocolError as exc:
                self.source_prepared(exc)
                return None
            return PrepareSource(message.image)
        if isinstance(message, FaceMap):
            try:
                self._charge_photos(2 * len(message.pairs), now)
            except ProtocolError as exc:
                self.face_map_prepared(message.pairs, exc)
                return None
            return PrepareFaceMap(message.pairs)
        if isinstance(message, StatsRequest):
            if _STATS not in self._control:  # requests while one is waiting share its answer
                self._control.append(_STATS)
        elif isinstance(message, Ping):
            self.queue_control(Pong(timestamp=wall_time))
        elif isinstance(message, Config):
            try:
                self.options = merged(self.options, message.options, self.option_table)
            except OptionError as exc:
                raise ProtocolError(ErrorCode.BAD_CONFIG, f"option {exc}; nothing was changed") from None
            self.queue_control(ConfigConfirmation(status="success", options=dict(self.options)))
        else:
            raise ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, f"a client may not send {type(message).__name__} messages")
        return None

    def offer_pixels(self, pixels: Pixels, timestamp: float, now: float) -> Action:
        """A camera frame its transport decoded (WebRTC): into the mailbox like a `Frame`;
        `timestamp` is its media time in seconds."""
        self.last_activity = now
        return self._offer(Frame(jpeg=b"", timestamp=timestamp), False, now, now, pixels)

    def _offer(self, frame: Frame, binary: bool, now: float, wall_time: float, pixels: Pixels | None = None) -> Action:
        self._count("received")
        job = FrameJob(frame=frame, binary=binary, received_at=now, pixels=pixels,
                       reply_timestamp=frame.timestamp if frame.timestamp is not None else wall_time)
        if self.job:
            self.pending.append(job)
            return ReadyAt(now, queued=True)
        superseding = bool(self.pending)
        if superseding:
            self._count("superseded")
        self.pending = collections.deque([job])
        return None if superseding else ReadyAt(max(now, self._next_take_at))

    def _charge_photos(self, photos: int, now: float) -> None:
        if self._photos is None:
            self._photos = PhotoBudget(self.limits.photos_per_minute)
        wait = self._photos.take(photos, now)
        if wait > 0:
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many photos to prepare ({photos} now, at most "
                                f"{self.limits.photos_per_minute:g} a minute): try again in {math.ceil(wait)} s")

    def take(self, now: float) -> tuple[FrameJob, BatchItem]:
        """The batcher takes the oldest frame of the mailbox as a unit of batch work."""
        assert self.pending, "take() on an empty mailbox"
        job = self.pending.popleft()
        if not self.job:  # a job is held back by its queue and by live clients, not by the cap
            self._next_take_at = now + 1.0 / self.limits.max_fps
        job.order, job.taken_at = self._takes, now
        self._takes += 1
        job.passthrough = self.sources is None and not self.face_map
        context = FrameContext(client_id=self.client_id, sources=self.sources or {}, options=self.options,
                               face_map=self.face_map, state=self.processor_state, time=self._tracking_time(job),
                               order=job.order)
        return job, BatchItem(jpeg=job.frame.jpeg, seq=job.frame.seq, context=context, received_at=job.received_at,
                              pixels=job.pixels, encode=self.encode_result)

    def _tracking_time(self, job: FrameJob) -> float:
        """The clock that face tracking and smoothing follow: when a live frame arrived, or a
        job frame's presentation time in the video (its timestamp, in seconds), so a file is
        smoothed as it plays however fast it is processed."""
        timestamp = job.frame.timestamp
        if self.job and isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
            return float(timestamp)
        return job.received_at

    def _refusal(self, exc: BaseException, what: str) -> ProtocolError:
        """The error to report for a failed preparation, counted; a processor bug must not end
        the connection."""
        error = reported(exc, what, self.client_id)
        self.stats.errors[error.code.value] += 1
        return error

    def source_prepared(self, result: dict[str, object] | BaseException) -> None:
        """The outcome of a `PrepareSource`: the prepared sources, or why the photo was refused."""
        if isinstance(result, BaseException):
            message = self._refusal(result, "face").message
            self.queue_control(SourceFaceConfirmation(status="error", message=message))
            return
        self.sources = result
        notes = [getattr(source, "note", "") for source in result.values()]
        self.queue_control(SourceFaceConfirmation(status="success", message="; ".join(["Source face set", *filter(None, notes)])))

    def face_map_prepared(self, pairs: tuple[FacePair, ...],
                          result: list[MappedFace | ProtocolError] | BaseException) -> None:
        """The outcome of a `PrepareFaceMap`: the map replaces the previous one only if every pair is usable."""
        if isinstance(result, BaseException):
            self.queue_control(FaceMapConfirmation(status="error", message=self._refusal(result, "face map").message))
            return
        statuses = tuple(PairStatus("error", r.message) if isinstance(r, ProtocolError) else PairStatus("success", "")
                         for r in result)
        refused = [r for r in result if isinstance(r, ProtocolError)]
        if refused:
            for error in refused:
                self.stats.errors[error.code.value] += 1
            message = f"{len(refused)} of {len(pairs)} pairs refused; the face map was not changed"
            self.queue_control(FaceMapConfirmation(status="error", message=message, pairs=statuses))
            return
        self.face_map = tuple(r for r in result if not isinstance(r, ProtocolError))
        self.queue_control(FaceMapConfirmation(status="success", message=f"{len(pairs)} faces mapped", pairs=statuses))

    # ---- results ------------------------------------------------------------------
    def complete(self, job: FrameJob, work: BatchItem) -> None:
        """A batch returned with this client's frame."""
        if self.closed:
            self._count("failed")
            return
        if work.error is not None:
            self._count("failed")
            if self.job:
                self._job_results[job.order] = (job, None)
                self.send_error(work.error)  # a job's client reads: its queue holds it back
            elif len(self._control) < CONTROL_BACKLOG:  # a client that does not read is told no more
                self.send_error(work.error)
            return
        if self.job:
            assert work.result is not None
            self._job_results[job.order] = (job, work.result)
            return
        if job.order < self._newest_result:
            self._count("superseded")  # a newer frame of ours already came back
            return
        self._newest_result = job.order
        if self._outbox is not None:
            self._count("superseded")  # the client has not drained the previous result
        assert work.result is not None
        self._outbox, self._result = job, work.result

    # ---- outbound -----------------------------------------------------------------
    def send_error(self, error: ProtocolError) -> None:
        self.stats.errors[error.code.value] += 1
        self.queue_control(Error(code=error.code, message=error.message, seq=error.seq))

    def queue_control(self, message: Message) -> None:
        if not self.closed:
            self._control.append(encode_json(message))

    @property
    def backlog_full(self) -> bool:
        """The shell should stop reading the client until its control messages drain, or (a
        job) until fewer of its frames wait to be processed and sent."""
        if self.closed:
            return False
        unanswered = len(self.pending) + self._takes - self._released if self.job else 0
        return len(self._control) >= CONTROL_BACKLOG or unanswered >= JOB_QUEUE

    @property
    def has_outgoing(self) -> bool:
        return bool(self._control) or self._outbox is not None or self._released in self._job_results

    def next_outgoing(self) -> Outgoing | None:
        """What to send now: control messages first, then the newest result."""
        control = self.next_control()
        if control is not None or self.closed:
            return control
        if self.job:
            return self._next_job_result()
        newest = self.next_result()
        return None if newest is None else self._reply(*newest)

    def next_control(self) -> Outgoing | None:
        """The next control message (JSON), for a transport that sends them apart from frames."""
        if self.closed or not self._control:
            return None
        item = self._control.popleft()
        if item is _STATS:  # made as it goes out: the newest numbers, once however often asked
            item = encode_json(Stats(data={**self.stats.snapshot(), "client": self.frames.as_dict()}))
        return Outgoing(item, binary=False)

    @property
    def has_result(self) -> bool:
        return self._outbox is not None and not self.closed

    def next_result(self) -> tuple[FrameJob, object] | None:
        """The newest live result as the pipeline made it; call `delivered` once it is sent."""
        if not self.has_result:
            return None
        job, self._outbox = self._outbox, None
        result, self._result = self._result, b""
        assert job is not None
        return job, result

    def _next_job_result(self) -> Outgoing | None:
        """A job's results in the order its frames came (a failed one was answered with an error)."""
        while self._released in self._job_results:
            job, result = self._job_results.pop(self._released)
            self._released += 1
            if result is not None:
                return self._reply(job, result)
        return None

    def _reply(self, job: FrameJob, result: object) -> Outgoing:
        pace_ms = None if self.pace is None else min(MAX_PACE_MS, round(1000 * self.pace(job.received_at, job.taken_at)))
        assert isinstance(result, bytes)
        reply = ProcessedFrame(jpeg=result, timestamp=job.reply_timestamp, seq=job.frame.seq, pace_ms=pace_ms)
        return Outgoing(*encode(reply, job.binary), job)

    def sent(self, outgoing: Outgoing, now: float) -> None:
        """`outgoing` was handed to the socket."""
        if outgoing.job is not None:
            self.delivered(outgoing.job, now)

    def delivered(self, job: FrameJob, now: float) -> None:
        """`job`'s result was handed to the transport."""
        self._count("processed")
        if job.passthrough:
            self._count("passthrough")
        self.stats.record_delivery(now - job.received_at)

    def send_failed(self, outgoing: Outgoing) -> None:
        """`outgoing` never reached the socket (the client went away mid-send)."""
        if outgoing.job is not None:
            self._count("failed")

    def close(self) -> None:
        """Account for everything left behind; later results count as failed."""
        self.closed = True
        for _ in self.pending:
            self._count("failed")
        self.pending.clear()
        for _, result in self._job_results.values():
            if result is not None:  # a failed one is counted already
                self._count("failed")
        self._job_results.clear()
        if self._outbox is not None:
            self._outbox = None
            self._count("failed")
        self._control.clear()
