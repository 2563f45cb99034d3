import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    Config,
    ConfigConfirmation,
    Error,
    ErrorCode,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    Frame,
    PairStatus,
    Ping,
    Pong,
    ProcessedFrame,
    ProtocolError,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    decode_json,
    encode_json,
)

JPEG_LIKE = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"

timestamps = st.one_of(st.integers(min_value=-(2**53), max_value=2**53), st.floats(allow_nan=False, allow_infinity=False))
seqs = st.one_of(st.none(), st.integers(min_value=0, max_value=2**40))
payloads = st.binary(min_size=1, max_size=512)


@given(payload=payloads, timestamp=timestamps, seq=seqs)
def test_frame_round_trip_keeps_timestamp_type(payload, timestamp, seq):
    decoded = decode_json(encode_json(Frame(jpeg=payload, timestamp=timestamp, seq=seq)))
    assert decoded == Frame(jpeg=payload, timestamp=timestamp, seq=seq)
    assert type(decoded.timestamp) is type(timestamp)


@given(payload=payloads, timestamp=timestamps, seq=seqs)
def test_processed_frame_round_trip(payload, timestamp, seq):
    message = ProcessedFrame(jpeg=payload, timestamp=timestamp, seq=seq)
    assert decode_json(encode_json(message)) == message


@pytest.mark.parametrize(
    "message",
    [
        SourceFace(image=JPEG_LIKE),
        SourceFaceConfirmation(status="success", message="Source face set"),
        SourceFaceConfirmation(status="error", message="No face detected"),
        StatsRequest(),
        Stats(data={"connected_clients": 2, "frames_processed": 10, "processing_time_avg": 0.01}),
        Ping(),
        Pong(timestamp=1234.5),
        Error(code="bad_json", message="nope", seq=7),
        Error(code="no_face", message="none"),
        Config(options={"opacity": 0.5, "many_faces": False}),
        ConfigConfirmation(status="success", options={"opacity": 0.5}),
        Reconnect(reason="server draining", delay_ms=250),
        FaceMap(pairs=(FacePair(source=b"src-a", target=b"tgt-a"), FacePair(source=b"src-b", target=b"tgt-b"))),
        FaceMapConfirmation(status="error", message="1 of 2 pairs refused",
                            pairs=(PairStatus("success", ""), PairStatus("error", "No face in target"))),
    ],
)
def test_control_messages_round_trip(message):
    assert decode_json(encode_json(message)) == message


def test_original_client_shapes_are_accepted():
    """Messages exactly as the original Deep-Live-Cam client and page send them."""
    b64 = base64.b64encode(JPEG_LIKE).decode()
    frame = decode_json(orjson.dumps({"type": "frame", "data": b64, "timestamp": 1700000000.25, "client_id": "abc"}))
    assert frame == Frame(jpeg=JPEG_LIKE, timestamp=1700000000.25, seq=None)
    browser = decode_json(orjson.dumps({"type": "frame", "data": "data:image/jpeg;base64," + b64, "timestamp": 1700000000123}))
    assert browser.timestamp == 1700000000123 and isinstance(browser.timestamp, int)
    assert browser.jpeg == JPEG_LIKE
    assert decode_json(orjson.dumps({"type": "frame", "data": b64})).timestamp is None
    assert decode_json(orjson.dumps({"type": "source_face", "data": b64, "timestamp": 1.0})) == SourceFace(JPEG_LIKE)
    assert decode_json(orjson.dumps({"type": "ping", "timestamp": 3.0})) == Ping()


def test_encoded_shapes_match_the_documented_ones():
    fields = orjson.loads(encode_json(ProcessedFrame(jpeg=b"ab", timestamp=5)))
    assert fields == {"type": "processed_frame", "data": "YWI=", "timestamp": 5}
    fields = orjson.loads(encode_json(Error(code=ErrorCode.BAD_IMAGE, message="x", seq=3)))
    assert fields == {"type": "error", "code": "bad_image", "message": "x", "seq": 3}


@pytest.mark.parametrize(
    "text, code",
    [
        (b"{not json", ErrorCode.BAD_JSON),
        (b"[1, 2]", ErrorCode.BAD_JSON),
        (b'"frame"', ErrorCode.BAD_JSON),
        (b"{}", ErrorCode.MISSING_FIELD),
        (b'{"type": "launch_missiles"}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type": 3}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type": "frame"}', ErrorCode.MISSING_FIELD),
        (b'{"type": "frame", "data": ""}', ErrorCode.MISSING_FIELD),
        (b'{"type": "frame", "data": "!!!notbase64"}', ErrorCode.INVALID_BASE64),
        (b'{"type": "frame", "data": "YWJ"}', ErrorCode.INVALID_BASE64),
        (b'{"type": "frame", "data": "data:image/jpeg,YWJj"}', ErrorCode.INVALID_BASE64),
        (b'{"type": "frame", "data": 12}', ErrorCode.INVALID_FIELD),
        (b'{"type": "frame", "data": "YWJj", "timestamp": "now"}', ErrorCode.INVALID_FIELD),
        (b'{"type": "frame", "data": "YWJj", "timestamp": true}', ErrorCode.INVALID_FIELD),
        (b'{"type": "frame", "data": "YWJj", "seq": -1}', ErrorCode.INVALID_FIELD),
        (b'{"type": "source_face"}', ErrorCode.MISSING_FIELD),
        (b'{"type": "stats", "data": [1]}', ErrorCode.INVALID_FIELD),
        (b'{"type": "pong"}', ErrorCode.MISSING_FIELD),
        (b'{"type": "config"}', ErrorCode.MISSING_FIELD),
        (b'{"type": "config", "options": [1]}', ErrorCode.INVALID_FIELD),
        (b'{"type": "face_map", "pairs": []}', ErrorCode.INVALID_FIELD),
        (b'{"type": "face_map", "pairs": [{"source": "YWJj"}]}', ErrorCode.MISSING_FIELD),
        (b'{"type": "face_map", "pairs": [1]}', ErrorCode.INVALID_FIELD),
    ],
)
def test_rejections_carry_a_machine_code(text, code):
    with pytest.raises(ProtocolError) as info:
        decode_json(text)
    assert info.value.code is code
    assert info.value.message


def test_a_missing_field_inside_a_pair_names_the_pair():
    with pytest.raises(ProtocolError) as info:
        decode_json(b'{"type": "face_map", "pairs": [{"source": "YWJj", "target": "YWJj"}, {"source": "YWJj"}]}')
    assert info.value.message == "pair 2 of 'face_map' needs 'target'"
    with pytest.raises(ProtocolError) as info:
        decode_json(b'{"type": "frame"}')
    assert info.value.message == "'frame' message needs 'data'"


def test_frame_errors_name_their_seq():
    with pytest.raises(ProtocolError) as info:
        decode_json(b'{"type": "frame", "data": "@@@", "seq": 42}')
    assert info.value.seq == 42


def assert_round_trips_if_accepted(text: bytes | str) -> None:
    """Only `ProtocolError` may escape the decoder; what it accepts survives a round trip."""
    try:
        message = decode_json(text)
    except ProtocolError:
        return
    assert decode_json(encode_json(message)) == message


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_input_only_ever_raises_protocol_error(data):
    assert_round_trips_if_accepted(data)


@given(
    st.dictionaries(
        st.sampled_from(["type", "data", "timestamp", "seq", "status", "message", "code", "extra"]),
        st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(), st.text(max_size=20),
                  st.sampled_from(["frame", "source_face", "stats", "pong", "error", "processed_frame", "YWJj"])),
    )
)
def test_arbitrary_objects_only_ever_raise_protocol_error(fields):
    assert_round_trips_if_accepted(orjson.dumps(fields))


def test_pace_ms_travels_on_processed_frames_and_must_be_a_whole_number():
    paced = ProcessedFrame(jpeg=b"\xff\xd8", timestamp=1.0, seq=3, pace_ms=340)
    assert decode_json(encode_json(paced)) == paced
    assert b"pace_ms" not in encode_json(ProcessedFrame(jpeg=b"\xff\xd8", timestamp=1.0))
    for bad in (-1, 1.5, "340", True, 2**32):
        text = orjson.dumps({"type": "processed_frame", "data": "/9g=", "timestamp": 1.0, "pace_ms": bad})
        with pytest.raises(ProtocolError) as caught:
            decode_json(text)
        assert caught.value.code == ErrorCode.INVALID_FIELD, bad
