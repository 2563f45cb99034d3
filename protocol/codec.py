"""The message registry: every message type once, with its wire name and its JSON reader and
writer, and the entry points that read it.

Adding a message type is its dataclass in `messages.py` (and in the `Message` union), its
reader and writer in `json_codec.py`, and one row here; `decode_json`, `encode_json` and
`encode` know it from then on. Only the types that carry an image have a binary form
(`binary_codec.py`); on a binary connection the others still go as JSON text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import orjson

from . import json_codec
from .binary_codec import BinaryMessage, decode_binary, encode_binary
from .errors import ErrorCode, ProtocolError
from .messages import (
    Config,
    ConfigConfirmation,
    Error,
    FaceMap,
    FaceMapConfirmation,
    Frame,
    Message,
    Ping,
    Pong,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
)


@dataclass(frozen=True)
class MessageType:
    """One row of the registry: what `decode_json` needs to read a type by its name and
    `encode_json` to write it by its class."""

    name: str  # the JSON "type"
    cls: type
    read: Callable[[json_codec.Fields], Any]  # the JSON object -> the message; raises ProtocolError
    write: Callable[[Any], json_codec.Fields]  # the message -> its JSON fields after "type"


MESSAGE_TYPES: tuple[MessageType, ...] = (
    MessageType("frame", Frame, json_codec.read_frame, json_codec.write_frame),
    MessageType("processed_frame", ProcessedFrame, json_codec.read_processed_frame,
                json_codec.write_processed_frame),
    MessageType("source_face", SourceFace, json_codec.read_source_face, json_codec.write_source_face),
    MessageType("source_face_confirmation", SourceFaceConfirmation, json_codec.read_source_face_confirmation,
                json_codec.write_source_face_confirmation),
    MessageType("stats_request", StatsRequest, lambda fields: StatsRequest(), json_codec.no_fields),
    MessageType("stats", Stats, json_codec.read_stats, json_codec.write_stats),
    MessageType("ping", Ping, lambda fields: Ping(), json_codec.no_fields),
    MessageType("pong", Pong, json_codec.read_pong, json_codec.write_pong),
    MessageType("error", Error, json_codec.read_error, json_codec.write_error),
    MessageType("config", Config, json_codec.read_config, json_codec.write_config),
    MessageType("config_confirmation", ConfigConfirmation, json_codec.read_config_confirmation,
                json_codec.write_config_confirmation),
    MessageType("reconnect", Reconnect, json_codec.read_reconnect, json_codec.write_reconnect),
    MessageType("face_map", FaceMap, json_codec.read_face_map, json_codec.write_face_map),
    MessageType("face_map_confirmation", FaceMapConfirmation, json_codec.read_face_map_confirmation,
                json_codec.write_face_map_confirmation),
)

BY_NAME: dict[str, MessageType] = {message_type.name: message_type for message_type in MESSAGE_TYPES}
BY_CLASS: dict[type, MessageType] = {message_type.cls: message_type for message_type in MESSAGE_TYPES}


def _message_type(message: Message) -> MessageType:
    try:
        return BY_CLASS[type(message)]
    except KeyError:
        raise TypeError(f"not a protocol message: {message!r}") from None


def decode_json(text: str | bytes) -> Message:
    """Parse one JSON text message; raises `ProtocolError` for anything unacceptable."""
    try:
        fields = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"message is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "message must be a JSON object")
    name = fields.get("type")
    if name is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "message needs a 'type'")
    message_type = BY_NAME.get(name) if isinstance(name, str) else None
    if message_type is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {name!r}")
    try:
        return message_type.read(fields)
    except ProtocolError as exc:
        exc.message_type = name
        raise


def encode_json(message: Message) -> bytes:
    """Serialize a message as UTF-8 JSON text (send it as a WebSocket text frame)."""
    message_type = _message_type(message)
    return orjson.dumps({"type": message_type.name, **message_type.write(message)},
                        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


class Encoded(NamedTuple):
    data: bytes
    binary: bool  # send as a binary WebSocket message; False: as text (`data` is UTF-8 JSON)


def encode(message: Message, binary: bool) -> Encoded:
    """A message as it goes on the wire: binary when the connection uses binary frames
    (`binary`) and the type has a binary form, JSON text otherwise."""
    if binary and isinstance(message, BinaryMessage):  # binary_codec's kinds: the types that carry an image
        return Encoded(encode_binary(message), True)
    return Encoded(encode_json(message), False)


def decode(data: bytes | str, binary: bool) -> Message:
    """One received WebSocket message: a binary one, or JSON text."""
    return decode_binary(data) if binary else decode_json(data)
