"""The receive buffers cut to a live swap's needs (server/rtp_buffers.py), on aiortc's own
packets, buffers and receivers."""
from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from server.rtp_buffers import (
    AUDIO_PREFETCH_PACKETS,
    MarkedFrameBuffer,
    VIDEO_CAPACITY,
    hold_audio_less,
    release_video_at_marker,
)


def packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    rtp = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=int(marker))
    rtp._data = data  # aiortc's: what its receiver's depayloader leaves on a packet, and the buffer reads
    return rtp


def test_aiortc_holds_a_frame_until_the_next_one_and_ours_releases_it_at_its_marker():
    theirs, ours = JitterBuffer(capacity=VIDEO_CAPACITY, is_video=True), MarkedFrameBuffer(VIDEO_CAPACITY, is_video=True)
    for buffer in (theirs, ours):
        assert buffer.add(packet(100, 3000, b"a"))[1] is None
    assert theirs.add(packet(101, 3000, b"b", marker=True))[1] is None  # why: it waits for frame 2
    frame = ours.add(packet(101, 3000, b"b", marker=True))[1]
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000
    late = theirs.add(packet(102, 6000, b"c"))[1]  # aiortc's: only now, a frame interval later
    assert late is not None and late.data == b"ab"
    assert ours.add(packet(102, 6000, b"c"))[1] is None  # ours: frame 2 has not ended yet
    assert ours.add(packet(103, 6000, b"d", marker=True))[1].data == b"cd"
    # When each was complete, by the timestamp aiortc's decoder gives it (from the first frame's).
    first, second = ours.completed_at(0), ours.completed_at(3000)
    assert first is not None and second is not None and first <= second
    assert ours.completed_at(3000) is None  # read once


def test_a_frame_with_a_missing_packet_waits_and_leaves_whole_once_it_comes():
    ours = MarkedFrameBuffer(VIDEO_CAPACITY, is_video=True)
    assert ours.add(packet(10, 90, b"a"))[1] is None
    assert ours.add(packet(12, 90, b"c", marker=True))[1] is None  # 11 is missing
    frame = ours.add(packet(11, 90, b"b"))[1]  # reordered: it arrives last
    assert frame is not None and frame.data == b"abc"


async def test_a_real_receivers_buffers_are_replaced_and_cut():
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="sendrecv").receiver
        audio = pc.addTransceiver("audio", direction="sendrecv").receiver
        buffer = release_video_at_marker(video)
        assert isinstance(buffer, MarkedFrameBuffer) and video._RTCRtpReceiver__jitter_buffer is buffer  # aiortc's own attribute
        assert hold_audio_less(audio) == AUDIO_PREFETCH_PACKETS
        assert audio._RTCRtpReceiver__jitter_buffer._prefetch == AUDIO_PREFETCH_PACKETS  # aiortc's, which we cut
    finally:
        await pc.close()
