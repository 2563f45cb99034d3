"""The message registry (`protocol.codec.MESSAGE_TYPES`) against the types and the codecs,
and `encode`, the one choice between a binary and a JSON message."""
from __future__ import annotations

from typing import get_args

import pytest

import protocol
from protocol import (
    HEADER_SIZE,
    MESSAGE_TYPES,
    Config,
    Error,
    ErrorCode,
    FaceMapConfirmation,
    Frame,
    Message,
    PairStatus,
    Ping,
    ProcessedFrame,
    ProtocolError,
    SourceFace,
    SourceFaceConfirmation,
    decode,
    decode_json,
    encode,
    encode_binary,
    encode_json,
)
from protocol.binary_codec import BinaryMessage

FRAME = Frame(jpeg=b"\xff\xd8", timestamp=1.5, seq=3)


def test_every_message_type_is_registered_once_and_exported():
    assert [t.cls for t in MESSAGE_TYPES] == list(get_args(Message))
    assert len({t.name for t in MESSAGE_TYPES}) == len(MESSAGE_TYPES)
    for message_type in MESSAGE_TYPES:
        assert getattr(protocol, message_type.cls.__name__) is message_type.cls
    assert all(hasattr(protocol, name) for name in protocol.__all__)


BINARY_TYPES = get_args(BinaryMessage)


@pytest.mark.parametrize("message_type", [t for t in MESSAGE_TYPES if t.cls in BINARY_TYPES], ids=lambda t: t.name)
def test_a_binary_connection_sends_the_image_carrying_types_as_binary(message_type):
    message = message_type.cls(b"\xff\xd8") if message_type.cls is SourceFace else message_type.cls(b"\xff\xd8", 1.0)
    sent = encode(message, binary=True)
    assert sent.binary and type(decode(sent.data, binary=True)) is message_type.cls


@pytest.mark.parametrize("message_type", [t for t in MESSAGE_TYPES if t.cls not in BINARY_TYPES], ids=lambda t: t.name)
def test_types_without_a_kind_have_no_binary_form(message_type):
    with pytest.raises(TypeError, match="has no binary form"):
        encode_binary(object.__new__(message_type.cls))  # the codec looks at the type first


def test_encode_sends_frames_binary_only_in_binary_mode_and_everything_else_as_json():
    assert encode(FRAME, binary=True) == (encode_binary(FRAME), True)
    assert encode(FRAME, binary=False) == (encode_json(FRAME), False)
    assert encode(Ping(), binary=True) == (encode_json(Ping()), False)
    for binary in (True, False):
        for message in (FRAME, SourceFace(b"PNG"), ProcessedFrame(b"J", 2, 7, pace_ms=5), Config({"opacity": 0.5})):
            assert decode(*encode(message, binary)) == message
    assert len(encode(SourceFace(b"PNG"), binary=True).data) == HEADER_SIZE + 3


def test_encode_refuses_what_is_not_a_message():
    with pytest.raises(TypeError, match="not a protocol message"):
        encode_json(PairStatus("success"))
    with pytest.raises(TypeError):
        encode("frame", binary=True)


def test_statuses_are_the_documented_ones():
    assert decode_json(b'{"type":"source_face_confirmation","status":"error"}') == SourceFaceConfirmation("error")
    confirmation = decode_json(b'{"type":"face_map_confirmation","status":"success","pairs":[{"status":"error"}]}')
    assert confirmation == FaceMapConfirmation("success", pairs=(PairStatus("error"),))
    for text in (b'{"type":"source_face_confirmation","status":"ok"}',
                 b'{"type":"config_confirmation","status":"error","options":{}}',
                 b'{"type":"face_map_confirmation","status":"success","pairs":[{"status":"maybe"}]}'):
        with pytest.raises(ProtocolError) as caught:
            decode_json(text)
        assert caught.value.code == ErrorCode.INVALID_FIELD and "'status' must be one of" in caught.value.message


def test_error_codes_are_the_enum_and_a_newer_peers_code_stays_text():
    assert decode_json(b'{"type":"error","code":"bad_config","message":"x"}').code is ErrorCode.BAD_CONFIG
    assert decode_json(b'{"type":"error","code":"from_the_future"}') == Error("from_the_future", "")
    assert encode_json(Error(ErrorCode.NO_FACE, "m")) == b'{"type":"error","code":"no_face","message":"m"}'
