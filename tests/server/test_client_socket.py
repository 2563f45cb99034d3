"""`MaskedFrames` follows frame boundaries however the bytes are cut, and finds the unmasked one."""
from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from server.client_socket import MaskedFrames


def frame(payload: bytes, masked: bool = True, opcode: int = 2) -> bytes:
    """One client frame, the way RFC 6455 5.2 lays it out (all three length forms)."""
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head = bytes([0x80 | opcode, mask_bit | len(payload)])
    elif len(payload) < 65536:
        head = bytes([0x80 | opcode, mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        head = bytes([0x80 | opcode, mask_bit | 127]) + struct.pack("!Q", len(payload))
    if masked:
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def feed_in_pieces(frames: MaskedFrames, stream: bytes, cuts: list[int]) -> bool:
    ok = True
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(stream)]):
        ok = frames.feed(stream[start:end])
    return ok


payload_sizes = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]) | st.integers(0, 300)
# Masking a few 64 KiB payloads in Python takes tens of milliseconds, hundreds on a busy machine:
# no per-example deadline (a wall-clock threshold); the examples' number and size bound the test.
unhurried = settings(deadline=None)


@unhurried
@given(st.lists(payload_sizes, min_size=1, max_size=5), st.lists(st.integers(0, 10**6), max_size=12))
def test_masked_frames_pass_however_the_stream_is_cut(sizes, cuts):
    # a masked payload of 0x00 bytes is its key repeated: a header-like 0x80 byte must not confuse it
    stream = b"".join(frame(bytes(size)) for size in sizes)
    frames = MaskedFrames()
    assert feed_in_pieces(frames, stream, [c % (len(stream) + 1) for c in cuts])
    assert not frames.unmasked and frames.between_frames


@unhurried
@given(st.lists(payload_sizes, max_size=4), payload_sizes, st.lists(st.integers(0, 10**6), max_size=12))
def test_the_first_unmasked_frame_is_found_after_any_masked_ones(sizes, unmasked_size, cuts):
    stream = b"".join(frame(bytes(size)) for size in sizes) + frame(b"\x80" * unmasked_size, masked=False)
    frames = MaskedFrames()
    assert not feed_in_pieces(frames, stream, [c % (len(stream) + 1) for c in cuts])
    assert frames.unmasked
    assert not frames.feed(frame(b"later"))  # nothing after it is read
