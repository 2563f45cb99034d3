"""JSON text framing (orjson), compatible with the original Deep-Live-Cam clients.

Compatibility rules (docs/protocol.md): unknown fields are ignored, timestamps are echoed with
their type, image data is plain base64 but a `data:image/...;base64,` prefix is accepted.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Callable

import orjson

from .errors import ErrorCode, ProtocolError
from .messages import (
    MAX_PACE_MS,
    Config,
    ConfigConfirmation,
    Error,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    Frame,
    Message,
    Ping,
    PairStatus,
    Pong,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    StatsRequest,
    Timestamp,
)

_DATA_URL_MARK = ";base64,"


def decode_base64(text: Any, seq: int | None = None) -> bytes:
    """Strictly decode base64 image data, tolerating a browser's data-URL prefix."""
    if not isinstance(text, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'data' must be a base64 string", seq)
    if text.startswith("data:"):
        marker = text.find(_DATA_URL_MARK)
        if marker < 0:
            raise ProtocolError(ErrorCode.INVALID_BASE64, "data URL without ';base64,'", seq)
        text = text[marker + len(_DATA_URL_MARK):]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(ErrorCode.INVALID_BASE64, f"'data' is not valid base64: {exc}", seq) from None
    if not data:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "'data' is empty", seq)
    return data


def _required(fields: dict[str, Any], name: str, seq: int | None = None, owner: str | None = None) -> Any:
    """`owner` names an object inside a message (a face-map pair); by default, the message."""
    try:
        return fields[name]
    except KeyError:
        owner = owner or f"'{fields.get('type')}' message"
        raise ProtocolError(ErrorCode.MISSING_FIELD, f"{owner} needs '{name}'", seq) from None


def _optional_timestamp(fields: dict[str, Any], seq: int | None) -> Timestamp | None:
    value = fields.get("timestamp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'timestamp' must be a number", seq)
    return value


def _optional_seq(fields: dict[str, Any]) -> int | None:
    value = fields.get("seq")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'seq' must be a non-negative integer")
    return value


def _optional_pace(fields: dict[str, Any], seq: int | None) -> int | None:
    value = fields.get("pace_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PACE_MS:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'pace_ms' must be a non-negative integer", seq)
    return value


def _string(fields: dict[str, Any], name: str, default: str | None = None, owner: str | None = None) -> str:
    value = fields.get(name, default) if default is not None else _required(fields, name, owner=owner)
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' must be a string")
    return value


def _frame(fields: dict[str, Any]) -> Frame:
    seq = _optional_seq(fields)
    timestamp = _optional_timestamp(fields, seq)
    return Frame(jpeg=decode_base64(_required(fields, "data", seq), seq), timestamp=timestamp, seq=seq)


def _processed_frame(fields: dict[str, Any]) -> ProcessedFrame:
    seq = _optional_seq(fields)
    timestamp = _optional_timestamp(fields, seq)
    if timestamp is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "'processed_frame' message needs 'timestamp'", seq)
    return ProcessedFrame(jpeg=decode_base64(_required(fields, "data", seq), seq), timestamp=timestamp, seq=seq,
                          pace_ms=_optional_pace(fields, seq))


def _object(fields: dict[str, Any], name: str) -> dict[str, Any]:
    value = _required(fields, name)
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' of '{fields.get('type')}' must be an object")
    return value


MAX_FACE_PAIRS = 16


def _list(fields: dict[str, Any], name: str, max_items: int) -> list[Any]:
    value = _required(fields, name)
    if not isinstance(value, list) or not value:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' must be a non-empty list")
    if len(value) > max_items:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' has {len(value)} items; at most {max_items}")
    if not all(isinstance(item, dict) for item in value):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"every item of '{name}' must be an object")
    return value


def _face_map(fields: dict[str, Any]) -> FaceMap:
    pairs = _list(fields, "pairs", MAX_FACE_PAIRS)
    return FaceMap(pairs=tuple(
        FacePair(source=decode_base64(_required(p, "source", owner=f"pair {i} of 'face_map'")),
                 target=decode_base64(_required(p, "target", owner=f"pair {i} of 'face_map'")))
        for i, p in enumerate(pairs, 1)
    ))


def _face_map_confirmation(fields: dict[str, Any]) -> FaceMapConfirmation:
    pairs = fields.get("pairs", [])
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'pairs' must be a list of objects")
    return FaceMapConfirmation(
        status=_string(fields, "status"),
        message=_string(fields, "message", ""),
        pairs=tuple(PairStatus(status=_string(p, "status", owner=f"pair {i} of 'face_map_confirmation'"),
                               message=_string(p, "message", ""))
                    for i, p in enumerate(pairs, 1)),
    )


def _reconnect(fields: dict[str, Any]) -> Reconnect:
    delay = fields.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'delay_ms' must be a non-negative integer")
    return Reconnect(reason=_string(fields, "reason", ""), delay_ms=delay)


def _pong(fields: dict[str, Any]) -> Pong:
    timestamp = _optional_timestamp(fields, None)
    if timestamp is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "'pong' message needs 'timestamp'")
    return Pong(timestamp=timestamp)


def _error(fields: dict[str, Any]) -> Error:
    return Error(code=_string(fields, "code", "unknown"), message=_string(fields, "message", ""), seq=_optional_seq(fields))


_DECODERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    "frame": _frame,
    "processed_frame": _processed_frame,
    "source_face": lambda f: SourceFace(image=decode_base64(_required(f, "data"))),
    "source_face_confirmation": lambda f: SourceFaceConfirmation(
        status=_string(f, "status"), message=_string(f, "message", "")
    ),
    "stats_request": lambda f: StatsRequest(),
    "stats": lambda f: Stats(data=_object(f, "data")),
    "ping": lambda f: Ping(),
    "pong": _pong,
    "error": _error,
    "config": lambda f: Config(options=_object(f, "options")),
    "reconnect": _reconnect,
    "face_map": _face_map,
    "face_map_confirmation": _face_map_confirmation,
    "config_confirmation": lambda f: ConfigConfirmation(status=_string(f, "status"), options=_object(f, "options")),
}


def decode_json(text: str | bytes) -> Message:
    """Parse one JSON text message; raises `ProtocolError` for anything unacceptable."""
    try:
        fields = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"message is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "message must be a JSON object")
    kind = fields.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "message needs a 'type'")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind!r}")
    try:
        return decoder(fields)
    except ProtocolError as exc:
        exc.message_type = kind
        raise


def _with_seq(fields: dict[str, Any], seq: int | None) -> dict[str, Any]:
    if seq is not None:
        fields["seq"] = seq
    return fields


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fields(message: Message) -> dict[str, Any]:
    if isinstance(message, ProcessedFrame):
        fields = _with_seq({"type": "processed_frame", "data": _b64(message.jpeg), "timestamp": message.timestamp},
                           message.seq)
        if message.pace_ms is not None:
            fields["pace_ms"] = message.pace_ms
        return fields
    if isinstance(message, Frame):
        fields: dict[str, Any] = {"type": "frame", "data": _b64(message.jpeg)}
        if message.timestamp is not None:
            fields["timestamp"] = message.timestamp
        return _with_seq(fields, message.seq)
    if isinstance(message, SourceFace):
        return {"type": "source_face", "data": _b64(message.image)}
    if isinstance(message, SourceFaceConfirmation):
        return {"type": "source_face_confirmation", "status": message.status, "message": message.message}
    if isinstance(message, StatsRequest):
        return {"type": "stats_request"}
    if isinstance(message, Stats):
        return {"type": "stats", "data": message.data}
    if isinstance(message, Ping):
        return {"type": "ping"}
    if isinstance(message, Pong):
        return {"type": "pong", "timestamp": message.timestamp}
    if isinstance(message, Config):
        return {"type": "config", "options": message.options}
    if isinstance(message, ConfigConfirmation):
        return {"type": "config_confirmation", "status": message.status, "options": message.options}
    if isinstance(message, FaceMap):
        return {"type": "face_map", "pairs": [{"source": _b64(p.source), "target": _b64(p.target)} for p in message.pairs]}
    if isinstance(message, FaceMapConfirmation):
        return {"type": "face_map_confirmation", "status": message.status, "message": message.message,
                "pairs": [{"status": p.status, "message": p.message} for p in message.pairs]}
    if isinstance(message, Reconnect):
        return {"type": "reconnect", "reason": message.reason, "delay_ms": message.delay_ms}
    if isinstance(message, Error):
        return _with_seq({"type": "error", "code": str(message.code), "message": message.message}, message.seq)
    raise TypeError(f"not a protocol message: {message!r}")


def encode_json(message: Message) -> bytes:
    """Serialize a message as UTF-8 JSON text (send it as a WebSocket text frame)."""
    return orjson.dumps(_fields(message), option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
