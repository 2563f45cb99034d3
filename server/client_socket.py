"""The server's end of a client's WebSocket: aiohttp's, with two things RFC 6455 asks that it
leaves out.

Clients' frames must be masked (5.1): aiohttp's reader unmasks what is masked and reads the
rest as it is, so the server closes on an unmasked frame itself. `MaskedFrames` walks the
frame headers of the byte stream (lengths and the mask bit, nothing else: aiohttp still parses
the frames) and says when one is unmasked; `ClientWebSocket` puts it in front of aiohttp's
reader, where every byte from the client passes, and turns the first unmasked frame into
aiohttp's own protocol error, which closes with 1002 like the violations aiohttp finds.

A refused frame (too big: 1009; unmasked: 1002) may still be arriving when aiohttp sends its
close frame and closes the socket; the kernel answers the unread bytes with a reset, and the
client never reads the close frame that says why. `ClientWebSocket.linger` keeps the socket
open, dropping what comes, until the client closes it or `LINGER_S` passes.

The seams are aiohttp's `WebSocketResponse._post_start` (where it hands its reader to the
connection) and `_close_transport`; the attack tests fail if a new aiohttp moves them.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import WSCloseCode, web
from aiohttp.http_websocket import WebSocketError

LINGER_S = 2.0
_MASK_BIT = 0x80
_LENGTH_BITS = 0x7F
_EXTENDED = {126: 2, 127: 8}  # 7-bit length values that mean "the length follows in n bytes"


@dataclass
class MaskedFrames:
    """Follows frame boundaries through bytes fed in any pieces; `unmasked` once a frame
    without a mask was seen (it stays so: nothing after it is read)."""

    unmasked: bool = False
    _header: bytes = b""
    _payload_left: int = 0

    @property
    def between_frames(self) -> bool:
        """True when the bytes fed so far end where a frame ends (no header or payload half
        read): where a stream of whole frames, however it was cut, must leave the walk."""
        return not self._header and not self._payload_left

    def feed(self, data: bytes) -> bool:
        """True while every frame so far is masked."""
        view = memoryview(data)
        while view and not self.unmasked:
            if self._payload_left:
                skipped = min(self._payload_left, len(view))
                self._payload_left -= skipped
                view = view[skipped:]
                continue
            header = self._header + bytes(view[: 14 - len(self._header)])
            if len(header) < 2:
                self._header, view = header, view[len(view):]
                continue
            if not header[1] & _MASK_BIT:
                self.unmasked = True
                break
            length_bytes = _EXTENDED.get(header[1] & _LENGTH_BITS, 0)
            header_size = 2 + length_bytes + 4
            if len(header) < header_size:
                self._header, view = header, view[len(view):]
                continue
            used = header_size - len(self._header)
            self._header, view = b"", view[used:]
            length = int.from_bytes(header[2 : 2 + length_bytes], "big") if length_bytes else header[1] & _LENGTH_BITS
            self._payload_left = length
        return not self.unmasked


def _unmasked_error() -> WebSocketError:
    return WebSocketError(WSCloseCode.PROTOCOL_ERROR, "unmasked frame from the client (RFC 6455 5.1)")


@dataclass
class _MaskCheckedReader:
    """aiohttp's reader, fed only while the client's frames are masked."""

    reader: object  # aiohttp's WebSocketReader
    frames: MaskedFrames
    messages: object  # aiohttp's WebSocketDataQueue, where the error goes

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self.frames.unmasked:
            return True, b""
        if not self.frames.feed(data):
            self.messages.set_exception(_unmasked_error())
            return True, b""
        return self.reader.feed_data(data)

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class ClientWebSocket(web.WebSocketResponse):
    _transport: asyncio.Transport | None = None
    _lingering = False

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: object) -> None:
        self._transport = request.transport
        connection = request.protocol
        frames = MaskedFrames()
        if not frames.feed(connection._message_tail):  # bytes that came with the handshake
            connection._message_tail = b""
        super()._post_start(request, protocol, writer)
        connection._payload_parser = _MaskCheckedReader(connection._payload_parser, frames, self._reader)
        if frames.unmasked:
            self._reader.set_exception(_unmasked_error())

    @property
    def unsent_bytes(self) -> int:
        """Bytes written for the client that its transport still holds (the kernel's socket
        buffer is full): what a client that stops reading costs the server besides the one
        result waiting for it in its session (the slow-reader test bounds it)."""
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def _close_transport(self) -> None:
        if self._reader is not None and self._reader.exception() is not None:
            self._lingering = True  # the reader refused a frame: see `linger`
            return
        super()._close_transport()

    async def linger(self) -> None:
        """After a refused frame: wait (reading and dropping) until the client closes, at most
        `LINGER_S`, then close. Without a refused frame, returns at once."""
        if not self._lingering:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_S
        while self._transport is not None and not self._transport.is_closing() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        super()._close_transport()
