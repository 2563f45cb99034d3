"""A minimal test client written from the documented protocol only (no server imports)."""
from __future__ import annotations

import aiohttp

from protocol import Message, decode_binary, decode_json, encode_binary, encode_json

TIMEOUT_S = 20.0


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT_S) -> Message:
    message = await ws.receive(timeout=timeout)
    if message.type == aiohttp.WSMsgType.TEXT:
        return decode_json(message.data)
    if message.type == aiohttp.WSMsgType.BINARY:
        return decode_binary(message.data)
    raise AssertionError(f"expected a message, got {message.type} {message.data!r} {message.extra!r}")


async def send_json(ws: aiohttp.ClientWebSocketResponse, message: Message) -> None:
    await ws.send_str(encode_json(message).decode())


async def send_binary(ws: aiohttp.ClientWebSocketResponse, message: Message) -> None:
    await ws.send_bytes(encode_binary(message))


async def send(ws: aiohttp.ClientWebSocketResponse, message: Message, binary: bool) -> None:
    await (send_binary(ws, message) if binary else send_json(ws, message))
