"""One WebRTC client: the shell that gives a `SessionCore` a peer connection (aiortc).

The camera arrives on the video track already decoded by aiortc's VP8/H.264 decoder; each
decoded frame is offered to the same latest-frame-wins mailbox as a WebSocket frame (the
receiver is read as fast as it delivers, so nothing queues there), and the batcher takes
it into the same batches. Its BGR pixels are made on the host pool with the batch's other
host work, and the result leaves it as a YUV video frame ready for the encoder. The
swapped video goes back on the same transceiver; while swapping is on, the track never
shows an unswapped camera frame: with no new result it repeats the last one. The client's
own audio, if it sends any, comes back delayed by the video's current delay so the two
stay in sync. The JSON control messages of docs/protocol.md travel on a data channel
labelled `control`, unchanged.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Callable

import av
import numpy as np
from aiohttp import WSCloseCode
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from protocol import Message
from protocol.webrtc import CONTROL_LABEL, VIDEO_CLOCK

from .session import Preparers, Scheduling
from .pipeline import BatchItem
from .rtp_buffers import MarkedFrameBuffer, hold_audio_less, release_video_at_marker
from .session_core import FrameJob, ReadyAt, SessionCore

log = logging.getLogger(__name__)

REPEAT_AFTER_S = 0.5  # with no new result for this long, the outgoing track repeats the last one
CONTROL_INBOX = 64  # control messages received and not yet handled before more are refused
DELAY_SMOOTHING = 0.1  # weight of each delivered frame in the video delay the audio follows


def smoothed(average: float, sample: float) -> float:
    """An exponentially weighted average that starts at its first sample."""
    return average + DELAY_SMOOTHING * (sample - average) if average else sample


def camera_pixels(frame: av.VideoFrame) -> Callable[[], np.ndarray]:
    """The BGR pixels of a decoded camera frame, converted when called (on a host thread)."""
    return lambda: frame.to_ndarray(format="bgr24")


def video_frame(image: np.ndarray) -> av.VideoFrame:
    """A processed BGR image as the encoder's input (YUV 4:2:0), made on a host thread."""
    return av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")


class ProcessedVideo(MediaStreamTrack):
    """The swapped video: what the batches return, newest first, timed by when it is sent."""

    kind = "video"

    def __init__(self, session: "PeerSession") -> None:
        super().__init__()
        self._session = session
        self._started = time.monotonic()
        self._last: av.VideoFrame | None = None
        self._handed_at = 0.0

    async def recv(self) -> av.VideoFrame:
        # aiortc asks for a frame once it has encoded and sent the one before: that time is
        # part of the video's lag, which the returned audio matches.
        if self._handed_at:
            self._session.encode_s = smoothed(self._session.encode_s, time.monotonic() - self._handed_at)
        frame = await self._session.next_frame(self._last is None)
        if frame is None:  # nothing new for a while: the last swapped frame again, never the camera
            assert self._last is not None  # (the encoder is done with it: it asks for one frame at a time)
            frame = self._last
        frame.pts = round((time.monotonic() - self._started) / VIDEO_CLOCK)
        frame.time_base = VIDEO_CLOCK
        self._last = frame
        self._handed_at = time.monotonic()
        return frame


class DelayedAudio(MediaStreamTrack):
    """The client's audio, each frame held back so that it leaves with the video frame captured
    at the same moment (lip sync in a video call): by the video's lag (`video_lag_s`), less
    what aiortc's receiver already held the audio (`held_packets` of it)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, video_lag_s: Callable[[], float], held_packets: int) -> None:
        super().__init__()
        self._video_lag_s = video_lag_s
        self._held_packets = held_packets
        self._held: collections.deque[tuple[float, av.AudioFrame | None]] = collections.deque()  # None: ended
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read(source), name="audio-in")

    async def _read(self, source: MediaStreamTrack) -> None:
        """Stamp every frame with its arrival as it comes: the receiver must not queue them."""
        try:
            while True:
                self._held.append((time.monotonic(), await source.recv()))
                self._arrived.set()
        except MediaStreamError:
            self._held.append((time.monotonic(), None))
            self._arrived.set()

    async def recv(self) -> av.AudioFrame:
        while not self._held:
            self._arrived.clear()
            await self._arrived.wait()
        arrived, frame = self._held.popleft()
        if frame is None:
            self.stop()
            raise MediaStreamError
        held_s = self._held_packets * frame.samples / frame.sample_rate
        wait = arrived + self._video_lag_s() - held_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return frame

    def stop(self) -> None:
        self._reader.cancel()
        super().stop()


class PeerSession:
    """What the batcher, the drain and the idle watch see of a WebRTC client (like
    `ClientSession`), over an aiortc peer connection."""

    transport = "webrtc"

    def __init__(self, session_id: str, core: SessionCore, pc: RTCPeerConnection, batcher: Scheduling,
                 preparers: Preparers, on_closed: Callable[["PeerSession"], None]) -> None:
        self.session_id = session_id
        self.core = core
        self.pc = pc
        self._batcher = batcher
        self._preparers = preparers
        self._on_closed = on_closed
        self._channel: RTCDataChannel | None = None
        self._inbox: asyncio.Queue[str | bytes] = asyncio.Queue(CONTROL_INBOX)
        self._control_ready = asyncio.Event()
        self._result_ready = asyncio.Event()
        self._video_delay_s = 0.0  # arrival (decoded) to hand-over to the encoder, smoothed
        self._frame_interval_s = 0.0  # between decoded camera frames, smoothed
        self.encode_s = 0.0  # aiortc's encoding and sending of a returned frame, smoothed
        self._last_offer = 0.0
        self._has_video = False
        self._video_buffer: MarkedFrameBuffer | None = None  # None: aiortc's own, which holds a frame
        self._tasks = [asyncio.create_task(self._read_control(), name=f"control-in-{core.client_id}"),
                       asyncio.create_task(self._send_control(), name=f"control-out-{core.client_id}")]
        self._closing: asyncio.Task[None] | None = None
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)

    @property
    def client_id(self) -> int:
        return self.core.client_id

    @property
    def last_activity(self) -> float:
        return self.core.last_activity

    # ---- what the batcher calls ------------------------------------------------------
    def take(self, now: float) -> tuple[FrameJob, BatchItem]:
        return self.core.take(now)

    def complete(self, job: FrameJob, work: BatchItem) -> None:
        self.core.complete(job, work)
        if self.core.has_result:
            self._result_ready.set()
        self._control_ready.set()  # an error to report, perhaps

    # ---- media -----------------------------------------------------------------------
    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        if track.kind == "video" and not self._has_video:
            self._has_video = True
            self._video_buffer = release_video_at_marker(receiver)
            self._tasks.append(asyncio.create_task(self._read_video(track), name=f"video-in-{self.client_id}"))
            self.pc.addTrack(ProcessedVideo(self))
        elif track.kind == "audio":
            self.pc.addTrack(DelayedAudio(track, self._video_lag_s, hold_audio_less(receiver)))

    def _video_lag_s(self) -> float:
        """From a camera frame's arrival here to its result leaving: what aiortc's receiver held
        it, the server's processing, and aiortc's encoding and sending."""
        held = self._frame_interval_s if self._video_buffer is None else 0.0
        return held + self._video_delay_s + self.encode_s

    async def _read_video(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if self._last_offer:
                self._frame_interval_s = smoothed(self._frame_interval_s, now - self._last_offer)
            self._last_offer = now
            # The frame's clock starts when its packets were all in, before aiortc decoded it.
            completed = self._video_buffer.completed_at(frame.pts) if self._video_buffer and frame.pts is not None else None
            arrived = min(now, completed) if completed is not None else now
            action = self.core.offer_pixels(camera_pixels(frame), float(frame.time or 0.0), arrived)
            if isinstance(action, ReadyAt):
                self._batcher.mark_ready(self, action.time)

    async def next_frame(self, first: bool) -> av.VideoFrame | None:
        """The newest processed frame, waiting for one; None when none came for
        `REPEAT_AFTER_S` (never before the first)."""
        while True:
            taken = self.core.next_result()
            if taken is not None:
                job, frame = taken
                now = time.monotonic()
                self.core.delivered(job, now)
                self._video_delay_s = smoothed(self._video_delay_s, now - job.received_at)
                assert isinstance(frame, av.VideoFrame)
                return frame
            self._result_ready.clear()
            try:
                await asyncio.wait_for(self._result_ready.wait(), None if first else REPEAT_AFTER_S)
            except asyncio.TimeoutError:
                return None

    # ---- control ---------------------------------------------------------------------
    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_LABEL or self._channel is not None:
            log.info("client %d: ignoring data channel %r", self.client_id, channel.label)
            return
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._control_ready.set)
        self._control_ready.set()

    def _on_message(self, message: str | bytes) -> None:
        try:
            self._inbox.put_nowait(message)
        except asyncio.QueueFull:  # a client that floods the channel faster than it is answered
            self.core.stats.errors["rate_limited"] += 1
            log.warning("client %d: control message dropped, %d waiting", self.client_id, CONTROL_INBOX)

    async def _read_control(self) -> None:
        while True:
            message = await self._inbox.get()
            data = message if isinstance(message, bytes) else message.encode()
            action = self.core.receive(data, isinstance(message, bytes), time.monotonic(), time.time())
            if action is not None and not isinstance(action, ReadyAt):
                await self._preparers.carry_out(self.core, action)
            self._control_ready.set()

    async def _send_control(self) -> None:
        while True:
            await self._control_ready.wait()
            self._control_ready.clear()
            channel = self._channel
            if channel is None or channel.readyState != "open":
                continue  # the messages wait in the core until the channel opens
            while (outgoing := self.core.next_control()) is not None:
                channel.send(outgoing.data.decode())

    def queue_control(self, message: Message) -> None:
        """A server-initiated message (a drain's `reconnect`)."""
        self.core.queue_control(message)
        self._control_ready.set()

    # ---- the end ---------------------------------------------------------------------
    def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.start_closing()

    def start_closing(self) -> asyncio.Task[None]:
        if self._closing is None:
            self._closing = asyncio.create_task(self.close(), name=f"close-{self.client_id}")
        return self._closing

    async def end(self, code: WSCloseCode, reason: str) -> None:
        """Disconnect the client (idle, draining, DELETE, shutting down)."""
        log.info("client %d: ending WebRTC session (%s)", self.client_id, reason)
        await self.start_closing()

    async def close(self) -> None:
        """Account for everything left behind (the slot is free at once), stop the tasks and the
        peer connection."""
        self.core.close()
        self._batcher.forget(self)
        self._on_closed(self)
        self._result_ready.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
