"""Request and reply: send one message, then read what comes until the reply of the type
asked for, within a deadline.

Every wait of that kind goes through `request`: the source face's confirmation (the live
stream on either transport, the video job), `--stats`, and the benchmark driver
(`perf/drive.py`). Messages of other types that come meanwhile go to `on_other` (an `error`
to count and log) or are skipped; the wait ends with the reply, with `NoReply` at the
deadline, or with `ConnectionEnded` when the connection closes first. It is written over a
`send` and a `receive` so that a WebSocket (`ask`) and WebRTC's control channel wait the
same way.
"""
from __future__ import annotations

import asyncio
import functools
import time
from typing import Awaitable, Callable, TypeVar

import aiohttp

from protocol import Message

from .errors import ConnectError
from .transport import close_description, decode_message, send_message

R = TypeVar("R")
Send = Callable[[Message], Awaitable[None]]
# The next message within the timeout in seconds; None if none came (or it was no protocol
# message); `ConnectionEnded` once the connection is gone.
Receive = Callable[[float], Awaitable["Message | None"]]
OnOther = Callable[[Message], Awaitable[None]]

CONNECTION_ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR)


class NoReply(ConnectError):
    """No reply came within the deadline ("no answer within 10 s")."""


class ConnectionEnded(ConnectError):
    """The connection ended before the reply came; the message says how ("code 1013: server full")."""


async def request(send: Send, receive: Receive, message: Message, reply: type[R] | tuple[type[R], ...],
                  timeout_s: float, on_other: OnOther | None = None) -> R:
    """Send `message`; the first message of type `reply` (or one of several) within `timeout_s`."""
    await send(message)
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        answer = await receive(remaining)
        if isinstance(answer, reply):
            return answer
        if answer is not None and on_other is not None:
            await on_other(answer)
    raise NoReply(f"no answer within {timeout_s:g} s")


async def receive_message(ws: aiohttp.ClientWebSocketResponse, timeout_s: float) -> Message | None:
    """A WebSocket's `Receive`."""
    try:
        raw = await ws.receive(timeout=timeout_s)
    except asyncio.TimeoutError:
        return None
    if raw.type in CONNECTION_ENDED:
        raise ConnectionEnded(close_description(ws, raw))
    return decode_message(raw)


async def ask(ws: aiohttp.ClientWebSocketResponse, message: Message, reply: type[R] | tuple[type[R], ...],
              timeout_s: float, *, binary: bool, on_other: OnOther | None = None) -> R:
    """`request` over a WebSocket (nothing else may read it meanwhile)."""
    return await request(functools.partial(send_message, ws, binary=binary), functools.partial(receive_message, ws),
                         message, reply, timeout_s, on_other)
