"""facestream wire protocol, sans-I/O: pure functions from messages to bytes and back.

No sockets, no asyncio, no numpy: the server, the Python client, the probe and the tests
all share this package, and the browser page mirrors `binary_codec` in JavaScript.
"""
from .binary_codec import HEADER_SIZE, PACED, VERSION, Kind, decode_binary, encode_binary
from .errors import ErrorCode, ProtocolError
from .json_codec import decode_json, encode_json
from .messages import (
    MAX_PACE_MS,
    JOB,
    PACING,
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
    Timestamp,
)

__all__ = [
    "HEADER_SIZE",
    "PACED",
    "JOB",
    "PACING",
    "MAX_PACE_MS",
    "VERSION",
    "Kind",
    "decode_binary",
    "encode_binary",
    "ErrorCode",
    "ProtocolError",
    "decode_json",
    "encode_json",
    "Config",
    "ConfigConfirmation",
    "Error",
    "FaceMap",
    "FaceMapConfirmation",
    "FacePair",
    "Frame",
    "Message",
    "PairStatus",
    "Ping",
    "Pong",
    "ProcessedFrame",
    "Reconnect",
    "SourceFace",
    "SourceFaceConfirmation",
    "Stats",
    "StatsRequest",
    "Timestamp",
]
