import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    HEADER_SIZE,
    ErrorCode,
    Frame,
    Kind,
    ProcessedFrame,
    ProtocolError,
    SourceFace,
    decode_binary,
    encode_binary,
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(payload=st.binary(max_size=512), seq=u32, timestamp=finite)
def test_frame_round_trip(payload, seq, timestamp):
    assert decode_binary(encode_binary(Frame(payload, timestamp, seq))) == Frame(payload, timestamp, seq)
    assert decode_binary(encode_binary(ProcessedFrame(payload, timestamp, seq))) == ProcessedFrame(payload, timestamp, seq)


def test_header_layout_is_the_documented_one():
    data = encode_binary(ProcessedFrame(jpeg=b"JPEG", timestamp=1.5, seq=0x01020304))
    assert HEADER_SIZE == 16
    assert data[:16] == bytes([1, 2, 0, 0, 4, 3, 2, 1]) + struct.pack("<d", 1.5)
    assert data[16:] == b"JPEG"


def test_source_face_round_trip():
    assert decode_binary(encode_binary(SourceFace(b"PNG"))) == SourceFace(b"PNG")


def test_unknown_flag_bits_are_ignored():
    data = struct.pack("<BBHId", 1, Kind.FRAME, 0xFFFF, 9, 2.0) + b"x"
    assert decode_binary(data) == Frame(b"x", 2.0, 9)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", ErrorCode.BAD_HEADER),
        (b"\x01\x01" + b"\x00" * 13, ErrorCode.BAD_HEADER),
        (struct.pack("<BBHId", 2, 1, 0, 5, 0.0), ErrorCode.UNSUPPORTED_VERSION),
        (struct.pack("<BBHId", 1, 9, 0, 5, 0.0), ErrorCode.BAD_HEADER),
        (struct.pack("<BBHId", 1, 0, 0, 5, 0.0), ErrorCode.BAD_HEADER),
        (struct.pack("<BBHId", 1, 1, 0, 5, float("nan")) + b"x", ErrorCode.INVALID_FIELD),
        (struct.pack("<BBHId", 1, 1, 0, 5, float("inf")) + b"x", ErrorCode.INVALID_FIELD),
    ],
)
def test_rejections(data, code):
    with pytest.raises(ProtocolError) as info:
        decode_binary(data)
    assert info.value.code is code


def test_rejection_names_seq_when_header_is_readable():
    with pytest.raises(ProtocolError) as info:
        decode_binary(struct.pack("<BBHId", 1, 77, 0, 5, 0.0))
    assert info.value.seq == 5


def test_seq_must_fit_u32():
    with pytest.raises(ValueError):
        encode_binary(Frame(b"x", 0.0, 2**32))


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_ever_raise_protocol_error_or_decode_to_what_round_trips(data):
    try:
        message = decode_binary(data)
    except ProtocolError:
        return
    assert isinstance(message, (Frame, ProcessedFrame, SourceFace))
    assert decode_binary(encode_binary(message)) == message
