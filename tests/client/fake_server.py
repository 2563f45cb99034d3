"""A deliberately slow stand-in server, written from docs/protocol.md only, that watches the
client's in-flight bound from the outside.

It behaves like the real one where it matters (one-slot latest-frame-wins mailbox, answers
only ever newer seqs) but takes `delay_s` per frame, or never answers (`delay_s=None`). For
every frame that arrives it records `seq - last answered seq`: how many of the client's
frames are unanswered at that moment, counting the one arriving, measured outside the client.
With `ask_reconnect`, the first `reconnect_connections` connections are asked to reconnect right after their source
face is confirmed, before any frame, as a server that starts draining at that moment does.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from protocol import (
    Frame,
    ProcessedFrame,
    Reconnect,
    SourceFace,
    SourceFaceConfirmation,
    decode,
    encode,
    encode_json,
)


@dataclass
class Observed:
    frames: int = 0
    answered: int = 0
    sources: int = 0
    outstanding: list[int] = field(default_factory=list)  # per arriving frame
    connected_at: list[float] = field(default_factory=list)  # time.monotonic() of each connection


def slow_app(delay_s: float | None, observed: Observed, ask_reconnect: Reconnect | None = None,
             reconnect_connections: int = 1) -> web.Application:
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        observed.connected_at.append(time.monotonic())
        asks = ask_reconnect is not None and len(observed.connected_at) <= reconnect_connections
        mailbox: list[tuple[Frame, bool]] = []
        wake = asyncio.Event()
        last_answered = 0

        async def worker() -> None:
            nonlocal last_answered
            while True:
                await wake.wait()
                wake.clear()
                while mailbox:
                    await asyncio.sleep(delay_s)
                    frame, binary = mailbox.pop()
                    reply = ProcessedFrame(jpeg=frame.jpeg, timestamp=frame.timestamp, seq=frame.seq)
                    last_answered = frame.seq
                    observed.answered += 1
                    data, as_binary = encode(reply, binary)
                    await (ws.send_bytes(data) if as_binary else ws.send_str(data.decode()))

        task = asyncio.create_task(worker()) if delay_s is not None else None
        try:
            async for message in ws:
                binary = message.type == WSMsgType.BINARY
                decoded = decode(message.data, binary)
                if isinstance(decoded, SourceFace):
                    observed.sources += 1
                    await ws.send_str(encode_json(SourceFaceConfirmation(status="success", message="ok")).decode())
                    if asks:
                        await ws.send_str(encode_json(ask_reconnect).decode())
                elif isinstance(decoded, Frame):
                    observed.frames += 1
                    observed.outstanding.append(decoded.seq - last_answered)
                    mailbox[:] = [(decoded, binary)]  # latest frame wins
                    wake.set()
        finally:
            if task is not None:
                task.cancel()
        return ws

    app = web.Application()
    app.router.add_get("/", websocket)
    return app
