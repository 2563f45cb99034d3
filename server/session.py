"""One WebSocket client: the shell that gives a `SessionCore` its socket, its clock and its helpers.

(`webrtc_session.py` is the other shell, over a WebRTC peer; both use `Preparers` below.)

It reads messages and hands them to the core, runs the slow preparations the core asks for
(source photos, face maps) in worker threads, tells the batcher when the mailbox has a
frame, and sends what the core has to send, one message at a time, in a task of its own so
a client that reads slowly never holds up the batches.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

from models.frame import MappedFace
from protocol import FacePair, Message, ProtocolError

from .pipeline import BatchItem
from .session_core import FrameJob, PrepareFaceMap, PrepareSource, ReadyAt, SessionCore

log = logging.getLogger(__name__)

SourcePreparer = Callable[[bytes], "asyncio.Future[dict[str, object]]"]
PairPreparer = Callable[[FacePair], "asyncio.Future[MappedFace | ProtocolError]"]


class Scheduling(Protocol):
    """What a session needs of its device's batcher."""

    def mark_ready(self, session: object, at: float, queued: bool = False) -> None: ...

    def forget(self, session: object) -> None: ...


@dataclass(frozen=True)
class Preparers:
    """The slow preparations a core asks its shell for, run off the loop."""

    sources: SourcePreparer
    pair: PairPreparer

    async def carry_out(self, core: SessionCore, action: PrepareSource | PrepareFaceMap) -> None:
        """Prepare what `action` names and hand the outcome (or the failure) back to `core`."""
        if isinstance(action, PrepareSource):
            try:
                result: object = await self.sources(action.image)
            except Exception as exc:  # noqa: BLE001 - the core turns it into a refusal
                result = exc
            core.source_prepared(result)  # type: ignore[arg-type]
            return
        mapped: object = []
        try:  # a pair at a time: other clients' photos are prepared in between
            mapped = [await self.pair(pair) for pair in action.pairs]
        except Exception as exc:  # noqa: BLE001 - the core turns it into a refusal
            mapped = exc
        core.face_map_prepared(action.pairs, mapped)  # type: ignore[arg-type]


class ClientSession:
    transport = "websocket"

    def __init__(self, core: SessionCore, ws: web.WebSocketResponse, batcher: Scheduling, preparers: Preparers) -> None:
        self.core = core
        self.ws = ws
        self._batcher = batcher
        self._preparers = preparers
        self._wake = asyncio.Event()
        self._backlog_eased = asyncio.Event()  # a message went out: the core may have room to read again
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{core.client_id}")

    @property
    def client_id(self) -> int:
        return self.core.client_id

    @property
    def last_activity(self) -> float:
        return self.core.last_activity


    # ---- what the batcher calls ------------------------------------------------------
    def take(self, now: float) -> tuple[FrameJob, BatchItem]:
        return self.core.take(now)

    def complete(self, job: FrameJob, work: BatchItem) -> None:
        self.core.complete(job, work)
        self._wake_sender()

    # ---- inbound ---------------------------------------------------------------------
    async def handle(self, kind: WSMsgType, data: bytes) -> None:
        """One WebSocket message; waits (stops reading this client) while its replies back up."""
        action = self.core.receive(data, kind == WSMsgType.BINARY, time.monotonic(), time.time())
        if isinstance(action, ReadyAt):
            self._batcher.mark_ready(self, action.time, action.queued)
        elif action is not None:
            await self._preparers.carry_out(self.core, action)
        self._wake_sender()
        while self.core.backlog_full:
            self._backlog_eased.clear()
            await self._backlog_eased.wait()

    def queue_control(self, message: Message) -> None:
        """A server-initiated message (a drain's `reconnect`)."""
        self.core.queue_control(message)
        self._wake_sender()

    # ---- outbound --------------------------------------------------------------------
    def _wake_sender(self) -> None:
        if self.core.has_outgoing:
            self._wake.set()

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while (outgoing := self.core.next_outgoing()) is not None:
                    self._backlog_eased.set()
                    try:
                        await self.ws.send_frame(outgoing.data, WSMsgType.BINARY if outgoing.binary else WSMsgType.TEXT)
                    except BaseException:  # gone, or cancelled by close(): the frame ends here
                        self.core.send_failed(outgoing)
                        raise
                    self.core.sent(outgoing, time.monotonic())
        except ConnectionError:
            log.debug("client %s went away while we were sending", self.client_id)

    async def end(self, code: WSCloseCode, reason: str) -> None:
        """Disconnect the client (idle, draining, shutting down); `close` follows."""
        await self.ws.close(code=code, message=reason.encode())

    async def close(self) -> None:
        """Account for everything left behind and stop the sender."""
        self.core.close()
        self._backlog_eased.set()
        self._batcher.forget(self)
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
