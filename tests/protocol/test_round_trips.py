"""Every valid message survives both codecs: decode(encode(m)) == m, and encoding it again
gives the same bytes (so a timestamp's type, int or float, survives too).

The strategies build each message type from the values the protocol allows (docs/protocol.md):
non-empty image bytes in JSON (empty `data` is refused), any bytes in binary; timestamps of
either type in JSON, float64 in the binary header; seq a u32 in binary.
"""
from __future__ import annotations

from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    MAX_PACE_MS,
    Config,
    ConfigConfirmation,
    Error,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    Frame,
    Message,
    PairStatus,
    Ping,
    Pong,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    Status,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
)

JSON_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON numbers read back as ints
FINITE = st.floats(allow_nan=False, allow_infinity=False)
U32 = st.integers(min_value=0, max_value=2**32 - 1)
TEXT = st.text(max_size=40)
IMAGE = st.binary(min_size=1, max_size=256)
STATUS = st.sampled_from(get_args(Status))  # a status outside the Literal is refused on decoding
TIMESTAMP = JSON_INT | FINITE
SEQ = st.none() | st.integers(min_value=0, max_value=2**64 - 1)
PACE_MS = st.none() | st.integers(min_value=0, max_value=MAX_PACE_MS)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | JSON_INT | FINITE | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON_VALUE, max_size=6)

JSON_MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(Frame, jpeg=IMAGE, timestamp=st.none() | TIMESTAMP, seq=SEQ),
    st.builds(ProcessedFrame, jpeg=IMAGE, timestamp=TIMESTAMP, seq=SEQ, pace_ms=PACE_MS),
    st.builds(SourceFace, image=IMAGE),
    st.builds(SourceFaceConfirmation, status=STATUS, message=TEXT),
    st.just(StatsRequest()),
    st.builds(Stats, data=JSON_OBJECT),
    st.just(Ping()),
    st.builds(Pong, timestamp=TIMESTAMP),
    st.builds(Error, code=TEXT, message=TEXT, seq=SEQ),
    st.builds(Config, options=JSON_OBJECT),
    st.builds(ConfigConfirmation, status=st.just("success"), options=JSON_OBJECT),
    st.builds(Reconnect, reason=TEXT, delay_ms=st.integers(min_value=0, max_value=2**63)),
    st.builds(FaceMap, pairs=st.lists(st.builds(FacePair, source=IMAGE, target=IMAGE), min_size=1, max_size=16)
              .map(tuple)),
    st.builds(FaceMapConfirmation, status=STATUS, message=TEXT,
              pairs=st.lists(st.builds(PairStatus, status=STATUS, message=TEXT), max_size=4).map(tuple)),
)

BINARY_MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(Frame, jpeg=st.binary(max_size=256), timestamp=FINITE, seq=U32),
    st.builds(ProcessedFrame, jpeg=st.binary(max_size=256), timestamp=FINITE, seq=U32, pace_ms=st.none() | U32),
    st.builds(SourceFace, image=st.binary(max_size=256)),
)


@given(JSON_MESSAGES)
def test_every_json_message_round_trips(message):
    text = encode_json(message)
    assert decode_json(text) == message
    assert encode_json(decode_json(text)) == text


@given(BINARY_MESSAGES)
def test_every_binary_message_round_trips(message):
    data = encode_binary(message)
    assert decode_binary(data) == message
    assert encode_binary(decode_binary(data)) == data
