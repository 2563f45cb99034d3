"""facestream wire protocol, sans-I/O: pure functions from messages to bytes and back.

No sockets, no asyncio, no numpy: the server, the Python client, the probe and the tests
all share this package, and the browser page mirrors `binary_codec` in JavaScript.
`codec.MESSAGE_TYPES` lists every message type once; `encode(message, binary)` is how
one goes on the wire. The live options are `protocol.options`.
"""
from . import messages as _messages
from .binary_codec import HEADER_SIZE, PACED, VERSION, Kind, decode_binary, encode_binary
from .codec import MESSAGE_TYPES, Encoded, MessageType, decode, decode_json, encode, encode_json
from .errors import ErrorCode, ProtocolError
from .messages import *  # noqa: F403  the message types and their fields' types: messages.__all__

__all__ = [
    "HEADER_SIZE",
    "PACED",
    "VERSION",
    "Kind",
    "decode_binary",
    "encode_binary",
    "MESSAGE_TYPES",
    "Encoded",
    "MessageType",
    "decode",
    "decode_json",
    "encode",
    "encode_json",
    "ErrorCode",
    "ProtocolError",
    *_messages.__all__,
]
