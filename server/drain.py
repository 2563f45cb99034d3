"""Drain mode: take a server out of a pool without cutting anyone's stream.

Draining stops new clients (HTTP 503 before the upgrade, `/readyz` says 503 so load
balancers stop sending), tells connected clients to `reconnect` (behind a balancer they
land on another server), and calls `on_drained` once the last one has left, or after
`timeout_s` when it closes the stragglers with 1001 (going away).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Callable

from aiohttp import WSCloseCode

from protocol import Reconnect

if TYPE_CHECKING:
    from .session import ClientSession

log = logging.getLogger(__name__)


class Drain:
    def __init__(self, sessions: "set[ClientSession]", timeout_s: float, on_drained: Callable[[], None]) -> None:
        self._sessions = sessions
        self._timeout_s = timeout_s
        self._on_drained = on_drained
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self._task is not None

    @property
    def finished(self) -> bool:
        """The drain has run its course: the last client left (or was closed at the timeout)
        and `on_drained` was called. What a supervisor, or a test, waits for."""
        return self._task is not None and self._task.done()

    def start(self) -> None:
        if self._task is not None:
            return
        log.warning("draining: refusing new clients, asking %d connected ones to reconnect", len(self._sessions))
        for session in list(self._sessions):
            session.queue_control(Reconnect(reason="server draining", delay_ms=0))
        self._task = asyncio.create_task(self._wait_until_empty(), name="drain")

    async def _wait_until_empty(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while self._sessions and loop.time() < deadline:
            await asyncio.sleep(0.1)
        stragglers = list(self._sessions)
        if stragglers:
            log.warning("drain timeout: closing %d clients that did not leave", len(stragglers))
            await asyncio.gather(
                *(s.end(WSCloseCode.GOING_AWAY, "server draining") for s in stragglers),
                return_exceptions=True,
            )
        log.warning("drained")
        self._on_drained()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
