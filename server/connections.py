"""What happens to a connection before it is a client: deadlines, a per-address limit, no echoes.

aiohttp leaves three things open that an attacker found: a connection may take as long as
it likes to send its request head (idle sockets, or a header trickled a byte a second, hold
a file descriptor each for an hour); one address may hold as many of those as it can open;
and a request aiohttp cannot parse is answered with its own raw request line, query token
included. Here a connection gets `handshake_timeout_s` to become a request (aiohttp's
keep-alive timer, which runs from the moment it connects), an address gets at most
`max_pending` connections that are not yet a WebSocket session, and a malformed request
gets a plain 400.

The hook is `Application._make_handler`, the one place aiohttp builds its low-level
`web.Server`, for `run_app` and the test server alike (aiohttp discourages subclassing
`Application`, so `guard` wraps the method of one instance); the server and its handlers are
the public `web.Server` and `web.RequestHandler`.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass
class ConnectionGate:
    """Counts each address's connections that have no session yet; refuses beyond `max_pending`
    (0: no limit). Behind a reverse proxy every connection comes from the proxy's address:
    the proxy must enforce its own per-client limit (see the README)."""

    max_pending: int
    pending: collections.Counter[str] = field(default_factory=collections.Counter)
    _address: dict[object, str] = field(default_factory=dict)  # pending handler -> its address
    refused: int = 0

    def admit(self, handler: object, address: str) -> bool:
        if self.max_pending and self.pending[address] >= self.max_pending:
            self.refused += 1
            return False
        self.pending[address] += 1
        self._address[handler] = address
        return True

    def established(self, handler: object) -> None:
        """The connection became a client session: it no longer counts."""
        address = self._address.pop(handler, None)
        if address is not None:
            self.pending[address] -= 1
            if not self.pending[address]:
                del self.pending[address]

    closed = established  # a pending connection that closed no longer counts either


class _Handler(web.RequestHandler):
    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp answers a request it cannot parse with the parser's message, which quotes
        the raw request line or header: a token in the query or in Authorization with it."""
        if status < 500:
            message = f"{status} Bad Request: the request could not be read\n"
        return super().handle_error(request, status, exc, message)


class _GuardedServer(web.Server):
    gate: ConnectionGate

    def __call__(self) -> web.RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else str(peer)
        if not self.gate.admit(handler, address):
            log.warning("refused a connection from %s: %d already without a session", address, self.gate.max_pending)
            transport.close()

    def connection_lost(self, handler: web.RequestHandler, exc: BaseException | None = None) -> None:
        self.gate.closed(handler)
        super().connection_lost(handler, exc)


def handler_args(handshake_timeout_s: float) -> dict[str, Any]:
    """For `web.Application(handler_args=...)`: aiohttp's keep-alive timer starts when a
    connection opens and stops only once a request has been read, so it is the deadline for
    the request head (and for an idle keep-alive connection)."""
    return {"keepalive_timeout": handshake_timeout_s}


def guard(app: web.Application, gate: ConnectionGate) -> None:
    """Make `app`'s connections pass through `gate`, and its 400s say nothing of the request."""
    make_handler = app._make_handler

    def guarded(**kwargs: Any) -> web.Server:
        server = make_handler(**kwargs)
        server.__class__ = _GuardedServer  # the server aiohttp built, with the gate's hooks
        server.gate = gate  # type: ignore[attr-defined]
        return server

    app._make_handler = guarded  # type: ignore[method-assign]
