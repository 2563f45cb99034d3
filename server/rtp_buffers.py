"""What aiortc's receivers hold back before a frame reaches us, cut to what a live swap needs.

aiortc's video jitter buffer releases a frame only when the next frame's first packet comes,
so every camera frame waits one frame interval (33 ms at 30 fps) before it is even decoded;
its audio buffer releases a packet once 4 more have come (80 ms), more than a fast swap's
whole video lag, so the returned audio could not be put in step with the video. aiortc has
no settings for either: the buffers are private attributes of `RTCRtpReceiver`, replaced or
adjusted here when a track arrives. If a later aiortc moves them, its defaults stay, the log
says so, and the callers learn what the buffers hold from the return values.
"""
from __future__ import annotations

import collections
import logging
import time

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

_BUFFER = "_RTCRtpReceiver__jitter_buffer"
AUDIO_PREFETCH_PACKETS = 1  # a packet leaves when the next is in (20 ms): gaps still wait for a late one
AIORTC_AUDIO_PREFETCH = 4
VIDEO_CAPACITY = 512  # aiortc's own for video
COMPLETED_KEPT = 64  # frames whose completion time waits to be read (the decoder drops some)


class MarkedFrameBuffer(JitterBuffer):
    """aiortc's video jitter buffer, but a frame leaves as soon as its packets are all in:
    contiguous from the oldest, the last one with the RTP marker bit (its frame's end).

    It also notes when each frame was complete, so the server's clock for a frame can start
    there rather than after aiortc's decoder (which a busy machine makes wait)."""

    def __init__(self, capacity: int, is_video: bool = True) -> None:
        super().__init__(capacity=capacity, is_video=is_video)
        self._completed: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._first_timestamp: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is None and self._origin is not None:
            frame = self._take_marked_frame()
        if frame is not None:
            self._note_completed(frame.timestamp)
        return pli_flag, frame

    def _note_completed(self, timestamp: int) -> None:
        if self._first_timestamp is None:
            self._first_timestamp = timestamp  # aiortc's frame timestamps count from the first frame
        self._completed[(timestamp - self._first_timestamp) & 0xFFFFFFFF] = time.monotonic()
        while len(self._completed) > COMPLETED_KEPT:
            self._completed.popitem(last=False)

    def completed_at(self, pts: int) -> float | None:
        """When the frame that decoded with this `pts` was complete (time.monotonic())."""
        return self._completed.pop(pts & 0xFFFFFFFF, None)

    def _take_marked_frame(self) -> JitterFrame | None:
        assert self._origin is not None
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None  # a packet of it is missing: aiortc's own rule releases it later
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packets[0].timestamp)  # type: ignore[attr-defined]
        return None


def release_video_at_marker(receiver: RTCRtpReceiver) -> MarkedFrameBuffer | None:
    """Give a video receiver a `MarkedFrameBuffer`; None (aiortc's one-frame hold stays) if
    its buffer is not where it was."""
    if not isinstance(getattr(receiver, _BUFFER, None), JitterBuffer):
        log.warning("aiortc's video jitter buffer was not found: camera frames wait one frame longer")
        return None
    buffer = MarkedFrameBuffer(capacity=VIDEO_CAPACITY, is_video=True)
    setattr(receiver, _BUFFER, buffer)
    return buffer


def hold_audio_less(receiver: RTCRtpReceiver) -> int:
    """Cut an audio receiver's prefetch to `AUDIO_PREFETCH_PACKETS`; the packets it holds."""
    buffer = getattr(receiver, _BUFFER, None)
    if not isinstance(buffer, JitterBuffer) or not isinstance(getattr(buffer, "_prefetch", None), int):
        log.warning("aiortc's audio jitter buffer was not found: returned audio may lag the video")
        return AIORTC_AUDIO_PREFETCH
    buffer._prefetch = min(buffer._prefetch, AUDIO_PREFETCH_PACKETS)
    return buffer._prefetch
