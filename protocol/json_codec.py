"""JSON text framing, compatible with the original Deep-Live-Cam clients: each message type's
reader (fields -> message) and writer (message -> fields). `codec.MESSAGE_TYPES` pairs them
with the type names; `codec.decode_json` and `encode_json` parse and serialize (orjson).

Compatibility rules (docs/protocol.md): unknown fields are ignored, timestamps are echoed with
their type, image data is plain base64 but a `data:image/...;base64,` prefix is accepted.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Literal, get_args

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
    PairStatus,
    Pong,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    Stats,
    Status,
    Timestamp,
)

Fields = dict[str, Any]  # a JSON message's object, its "type" included

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


def _required(fields: Fields, name: str, seq: int | None = None, owner: str | None = None) -> Any:
    """`owner` names an object inside a message (a face-map pair); by default, the message."""
    try:
        return fields[name]
    except KeyError:
        owner = owner or f"'{fields.get('type')}' message"
        raise ProtocolError(ErrorCode.MISSING_FIELD, f"{owner} needs '{name}'", seq) from None


def _optional_timestamp(fields: Fields, seq: int | None) -> Timestamp | None:
    value = fields.get("timestamp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'timestamp' must be a number", seq)
    return value


def _optional_seq(fields: Fields) -> int | None:
    value = fields.get("seq")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'seq' must be a non-negative integer")
    return value


def _optional_pace(fields: Fields, seq: int | None) -> int | None:
    value = fields.get("pace_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PACE_MS:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'pace_ms' must be a non-negative integer", seq)
    return value


def _string(fields: Fields, name: str, default: str | None = None, owner: str | None = None) -> str:
    value = fields.get(name, default) if default is not None else _required(fields, name, owner=owner)
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' must be a string")
    return value


def _required_timestamp(fields: Fields, seq: int | None) -> Timestamp:
    timestamp = _optional_timestamp(fields, seq)
    if timestamp is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, f"'{fields.get('type')}' message needs 'timestamp'", seq)
    return timestamp


def _status(fields: Fields, allowed: Any, owner: str | None = None) -> Any:
    """A status field, one of the values of the `Literal` type `allowed` (docs/protocol.md)."""
    value = _string(fields, "status", owner=owner)
    if value not in get_args(allowed):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'status' must be one of {', '.join(get_args(allowed))}")
    return value


def _object(fields: Fields, name: str) -> Fields:
    value = _required(fields, name)
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' of '{fields.get('type')}' must be an object")
    return value


MAX_FACE_PAIRS = 16


def _list(fields: Fields, name: str, max_items: int) -> list[Any]:
    value = _required(fields, name)
    if not isinstance(value, list) or not value:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' must be a non-empty list")
    if len(value) > max_items:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"'{name}' has {len(value)} items; at most {max_items}")
    if not all(isinstance(item, dict) for item in value):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"every item of '{name}' must be an object")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _with_seq(fields: Fields, seq: int | None) -> Fields:
    if seq is not None:
        fields["seq"] = seq
    return fields


# ---- each type's reader and writer -------------------------------------------------
# A reader gets the whole object ("type" included, for its error texts); a writer returns
# the fields after "type", in the order they go on the wire.

def no_fields(message: Message) -> Fields:
    return {}


def read_frame(fields: Fields) -> Frame:
    seq = _optional_seq(fields)
    timestamp = _optional_timestamp(fields, seq)
    return Frame(jpeg=decode_base64(_required(fields, "data", seq), seq), timestamp=timestamp, seq=seq)


def write_frame(message: Frame) -> Fields:
    fields: Fields = {"data": _b64(message.jpeg)}
    if message.timestamp is not None:
        fields["timestamp"] = message.timestamp
    return _with_seq(fields, message.seq)


def read_processed_frame(fields: Fields) -> ProcessedFrame:
    seq = _optional_seq(fields)
    timestamp = _required_timestamp(fields, seq)
    return ProcessedFrame(jpeg=decode_base64(_required(fields, "data", seq), seq), timestamp=timestamp, seq=seq,
                          pace_ms=_optional_pace(fields, seq))


def write_processed_frame(message: ProcessedFrame) -> Fields:
    fields = _with_seq({"data": _b64(message.jpeg), "timestamp": message.timestamp}, message.seq)
    if message.pace_ms is not None:
        fields["pace_ms"] = message.pace_ms
    return fields


def read_source_face(fields: Fields) -> SourceFace:
    return SourceFace(image=decode_base64(_required(fields, "data")))


def write_source_face(message: SourceFace) -> Fields:
    return {"data": _b64(message.image)}


def read_source_face_confirmation(fields: Fields) -> SourceFaceConfirmation:
    return SourceFaceConfirmation(status=_status(fields, Status), message=_string(fields, "message", ""))


def write_source_face_confirmation(message: SourceFaceConfirmation) -> Fields:
    return {"status": message.status, "message": message.message}


def read_stats(fields: Fields) -> Stats:
    return Stats(data=_object(fields, "data"))


def write_stats(message: Stats) -> Fields:
    return {"data": message.data}


def read_pong(fields: Fields) -> Pong:
    return Pong(timestamp=_required_timestamp(fields, None))


def write_pong(message: Pong) -> Fields:
    return {"timestamp": message.timestamp}


def read_error(fields: Fields) -> Error:
    code: ErrorCode | str = _string(fields, "code", "unknown")
    try:
        code = ErrorCode(code)
    except ValueError:
        pass  # a code newer than this side: kept as the peer spelled it
    return Error(code=code, message=_string(fields, "message", ""), seq=_optional_seq(fields))


def write_error(message: Error) -> Fields:
    return _with_seq({"code": str(message.code), "message": message.message}, message.seq)


def read_config(fields: Fields) -> Config:
    return Config(options=_object(fields, "options"))


def write_config(message: Config) -> Fields:
    return {"options": message.options}


def read_config_confirmation(fields: Fields) -> ConfigConfirmation:
    return ConfigConfirmation(status=_status(fields, Literal["success"]), options=_object(fields, "options"))


def write_config_confirmation(message: ConfigConfirmation) -> Fields:
    return {"status": message.status, "options": message.options}


def read_face_map(fields: Fields) -> FaceMap:
    pairs = _list(fields, "pairs", MAX_FACE_PAIRS)
    return FaceMap(pairs=tuple(
        FacePair(source=decode_base64(_required(p, "source", owner=f"pair {i} of 'face_map'")),
                 target=decode_base64(_required(p, "target", owner=f"pair {i} of 'face_map'")))
        for i, p in enumerate(pairs, 1)
    ))


def write_face_map(message: FaceMap) -> Fields:
    return {"pairs": [{"source": _b64(p.source), "target": _b64(p.target)} for p in message.pairs]}


def read_face_map_confirmation(fields: Fields) -> FaceMapConfirmation:
    pairs = fields.get("pairs", [])
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'pairs' must be a list of objects")
    return FaceMapConfirmation(
        status=_status(fields, Status),
        message=_string(fields, "message", ""),
        pairs=tuple(PairStatus(status=_status(p, Status, owner=f"pair {i} of 'face_map_confirmation'"),
                               message=_string(p, "message", ""))
                    for i, p in enumerate(pairs, 1)),
    )


def write_face_map_confirmation(message: FaceMapConfirmation) -> Fields:
    return {"status": message.status, "message": message.message,
            "pairs": [{"status": p.status, "message": p.message} for p in message.pairs]}


def read_reconnect(fields: Fields) -> Reconnect:
    delay = fields.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "'delay_ms' must be a non-negative integer")
    return Reconnect(reason=_string(fields, "reason", ""), delay_ms=delay)


def write_reconnect(message: Reconnect) -> Fields:
    return {"reason": message.reason, "delay_ms": message.delay_ms}
