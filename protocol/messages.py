"""Message types of the facestream protocol, independent of how they are framed.

The same dataclass is produced whether a frame arrived as JSON (base64) or binary, so
the server and the clients never branch on the wire format past the codec.
Image payloads are raw bytes here; base64 exists only inside the JSON codec.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args

from .errors import ErrorCode

# Timestamps are echoed exactly as received: Python clients send float seconds,
# browsers send integer milliseconds.
Timestamp = Union[int, float]

# The WebSocket subprotocol a client offers to be paced: its `processed_frame`s then carry
# `pace_ms` (docs/protocol.md, "Pacing"). Clients that do not offer it see no change.
PACING = "facestream.pacing"
# The subprotocol of a job (a video file, docs/protocol.md "Jobs"): every frame is queued in
# order and answered in order, none superseded.
JOB = "facestream.job"
MAX_PACE_MS = 0xFFFFFFFF

# How a request went: "error" comes with a message saying why (docs/protocol.md).
Status = Literal["success", "error"]


@dataclass(frozen=True, slots=True)
class Frame:
    """A camera frame from a client (JPEG)."""

    jpeg: bytes
    timestamp: Timestamp | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class ProcessedFrame:
    """The server's answer to a `Frame`, echoing its timestamp and seq."""

    jpeg: bytes
    timestamp: Timestamp
    seq: int | None = None
    pace_ms: int | None = None  # paced connections: send the next frame this long after this one was sent


@dataclass(frozen=True, slots=True)
class SourceFace:
    """The face a client wants to wear (JPEG or PNG)."""

    image: bytes


@dataclass(frozen=True, slots=True)
class SourceFaceConfirmation:
    status: Status
    message: str = ""


@dataclass(frozen=True, slots=True)
class StatsRequest:
    pass


@dataclass(frozen=True, slots=True)
class Stats:
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    timestamp: Timestamp


@dataclass(frozen=True, slots=True)
class Error:
    code: ErrorCode | str  # a code newer than this side's ErrorCode stays a string
    message: str
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Live options to change for this client only (only the fields to change)."""

    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConfigConfirmation:
    status: Literal["success"]  # a refused `config` is answered with an `error` instead
    options: dict[str, Any] = field(default_factory=dict)  # all effective options


@dataclass(frozen=True, slots=True)
class FacePair:
    """Wear `source` on the person shown in `target` (both photos: JPEG or PNG)."""

    source: bytes
    target: bytes


@dataclass(frozen=True, slots=True)
class FaceMap:
    """Several sources, each for one person: faces are matched to the targets by identity."""

    pairs: tuple[FacePair, ...]


@dataclass(frozen=True, slots=True)
class PairStatus:
    status: Status
    message: str = ""


@dataclass(frozen=True, slots=True)
class FaceMapConfirmation:
    status: Status  # "success" when every pair was accepted
    message: str = ""
    pairs: tuple[PairStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The server asks the client to connect again (it is draining); behind a load balancer
    the new connection lands on another server."""

    reason: str = ""
    delay_ms: int = 0


Message = Union[
    Frame,
    ProcessedFrame,
    SourceFace,
    SourceFaceConfirmation,
    StatsRequest,
    Stats,
    Ping,
    Pong,
    Error,
    Config,
    ConfigConfirmation,
    Reconnect,
    FaceMap,
    FaceMapConfirmation,
]

# `from protocol import Frame`: the package exports these (protocol/__init__.py), every
# message type by way of the union above.
__all__ = ["JOB", "MAX_PACE_MS", "PACING", "FacePair", "Message", "PairStatus", "Status", "Timestamp",
           *(message.__name__ for message in get_args(Message))]
