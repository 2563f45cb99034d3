"""The one error type of the wire protocol, and every machine code a peer may see.

Keeping all codes in one enum means the server, the clients and the docs cannot
drift apart on spelling; the human `message` is free text, the `code` is the contract.
"""
from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    """Machine codes carried by `ProtocolError` and by the JSON `error` message."""

    # Raised by the codecs (the bytes on the wire are wrong).
    BAD_JSON = "bad_json"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_BASE64 = "invalid_base64"
    BAD_HEADER = "bad_header"
    UNSUPPORTED_VERSION = "unsupported_version"
    # Raised by the server about what the bytes contain.
    BAD_IMAGE = "bad_image"
    IMAGE_TOO_LARGE = "image_too_large"
    NO_FACE = "no_face"
    PROCESSING_FAILED = "processing_failed"
    UNEXPECTED_MESSAGE = "unexpected_message"
    BAD_CONFIG = "bad_config"
    UNSUPPORTED = "unsupported"  # this server cannot do what was asked (e.g. face maps without a recognizer)
    RATE_LIMITED = "rate_limited"  # too much of something costly (photos to prepare): try again later

    def __str__(self) -> str:
        return self.value


class ProtocolError(Exception):
    """A message that cannot be accepted.

    `seq` names the frame it was about and `message_type` the type of the message (e.g.
    "frame"), when the bytes got far enough to tell; the server uses it to count a broken
    frame as received and failed, so its accounting stays whole.
    """

    def __init__(self, code: ErrorCode, message: str, seq: int | None = None, message_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq
        self.message_type = message_type

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r}, seq={self.seq!r})"
