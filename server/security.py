"""Who may use the server: bearer tokens, browser origins, and an access log that never leaks a token.

Tokens are compared in constant time and checked before the WebSocket upgrade, so a
stranger gets a plain HTTP 401 and never a session. Browsers cannot set headers on a
WebSocket, so they may present the token as a `token` query parameter; that is why the
access log below records paths without their query strings.

Whether a request on `/` is a WebSocket upgrade is never decided here: the handler asks
aiohttp's own handshake (`WebSocketResponse.can_prepare`, the code that performs the
upgrade) and then calls `check_upgrade`. A second parser of the `Upgrade` header would
disagree with aiohttp on some spelling (it strips Unicode whitespace), and every such
spelling would be an upgrade that skips the checks.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Health checks, and the page's own files and its options table, need no token.
OPEN_PATHS = ("/healthz", "/readyz", "/static/", "/options")


class TokenStore:
    """The accepted tokens: given on the command line and/or read from a file (one per line)."""

    def __init__(self, tokens: Iterable[str] = (), path: Path | None = None) -> None:
        self._fixed = [t for t in tokens if t]
        self.path = path
        self._tokens: list[bytes] = []
        self.reload()

    def reload(self) -> None:
        """Re-read the token file (on SIGHUP): revoked tokens stop working for new connections."""
        tokens = list(self._fixed)
        if self.path is not None:
            lines = self.path.read_text().splitlines()
            tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        self._tokens = [t.encode() for t in tokens]
        log.info("authentication: %d token(s) accepted", len(self._tokens))

    @property
    def enabled(self) -> bool:
        return bool(self._tokens) or self.path is not None

    def values(self) -> list[str]:
        """The accepted tokens as text (to keep them out of logs)."""
        return [token.decode("utf-8", "surrogateescape") for token in self._tokens]

    def accepts(self, presented: str | None) -> bool:
        if presented is None:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")  # any bytes a header may carry
        matched = False
        for token in self._tokens:  # no early exit: the time taken says nothing about which token
            matched |= hmac.compare_digest(candidate, token)
        return matched


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token")


def needs_token(request: web.Request) -> bool:
    """The numbers and the admin routes need a token; the page, its files and the health checks
    (which load balancers probe without credentials) do not. `/` serves both the page and the
    WebSocket: its upgrades are checked by the handler, with `check_upgrade`."""
    return request.path != "/" and not request.path.startswith(OPEN_PATHS)


Origin = tuple[str, str, int]  # scheme, host, port: what makes two spellings the same origin


def parse_origin(text: str) -> Origin | None:
    """`https://App.Example:443/` and `https://app.example` are one origin; None if not http(s)."""
    try:
        url = URL(text.strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host or url.port is None:
        return None
    return url.scheme, url.host.lower().rstrip("."), url.port


@dataclass(frozen=True)
class OriginPolicy:
    """Which browser pages may open a WebSocket here, when `--allowed-origin` is given at all:
    those origins, the server's public URLs, and the address the connection came in on
    (its own page opened by IP). Never the request's `Host` header: a page on
    `evil.example` whose name the attacker points at this server (DNS rebinding) sends
    `Host: evil.example` along with its `Origin`."""

    allowed: frozenset[Origin]
    public: frozenset[Origin] = frozenset()

    @classmethod
    def of(cls, allowed: Iterable[str], public_urls: Iterable[str] = ()) -> "OriginPolicy":
        return cls(frozenset(filter(None, map(parse_origin, allowed))),
                   frozenset(filter(None, map(parse_origin, public_urls))))

    def allows(self, request: web.Request) -> bool:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or not self.allowed:  # not a browser, or no origin check asked for
            return True
        parsed = parse_origin(origin)
        return parsed is not None and (parsed in self.allowed or parsed in self.public or parsed in _local(request))


def _local(request: web.Request) -> set[Origin]:
    """The origins of the address this connection reached, from the socket, not the request."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple):
        return set()
    host, port = str(sockname[0]), int(sockname[1])
    hosts = {host.lower()}
    if is_loopback(host):
        hosts |= {"localhost", "127.0.0.1", "::1"}
    return {(request.scheme, name, port) for name in hosts}


def require_token(request: web.Request, tokens: TokenStore) -> None:
    """HTTP 401 unless authentication is off or the request presents an accepted token."""
    if tokens.enabled and not tokens.accepts(presented_token(request)):
        log.warning("refused %s %s from %s: missing or wrong token", request.method, request.path, request.remote)
        raise web.HTTPUnauthorized(text="a valid token is required\n", headers={hdrs.WWW_AUTHENTICATE: "Bearer"})


def check_upgrade(request: web.Request, tokens: TokenStore, origins: OriginPolicy) -> None:
    """For a request that aiohttp's handshake would upgrade: HTTP 403 for a foreign origin,
    401 without a token. Call it after `can_prepare` said yes and before `prepare`."""
    if not origins.allows(request):
        log.warning("refused a WebSocket from origin %s", request.headers.get(hdrs.ORIGIN))
        raise web.HTTPForbidden(text="origin not allowed\n")
    require_token(request, tokens)


def access_middleware(tokens: TokenStore) -> Callable:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if needs_token(request):
            require_token(request, tokens)
        return await handler(request)

    return check


_TOKEN_SHAPES = re.compile(r"(token=)[^&\s'\"]*|(bearer\s+)\S+", re.IGNORECASE)
# The loggers aiohttp writes requests it could not parse to, raw request line included.
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.websocket", "aiohttp.internal")


def redact(text: str, tokens: TokenStore) -> str:
    """`text` with every accepted token, and anything shaped like a query or Bearer token, replaced."""
    for token in tokens.values():
        text = text.replace(token, "***")
    return _TOKEN_SHAPES.sub(lambda match: (match.group(1) or match.group(2)) + "***", text)


class RedactTokens(logging.Filter):
    """Installed on aiohttp's loggers: a malformed request is logged with its raw request line
    and headers (in the message or the exception), where a query or Bearer token travels."""

    def __init__(self, tokens: TokenStore) -> None:
        super().__init__()
        self._tokens = tokens

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self._tokens), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._tokens)
        return True


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Like aiohttp's access log, but without query strings: a browser's token travels there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, request.path, response.status, time)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
