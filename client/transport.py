"""One WebSocket connection to a facestream server: open it, and move protocol messages over it.

Everything here is per connection: the TLS and token settings, turning each way a
connection attempt can fail into one clear line (and whether retrying can help), retrying
as the run's `reconnect.ReconnectPolicy` says (`connect`), and the codec calls from
`protocol/`, so the streaming logic never touches wire formats.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from typing import Any

import aiohttp

from protocol import PACING, Message, ProtocolError, decode, encode

from .config import ClientConfig
from .errors import ConnectError
from .reconnect import ReconnectPolicy

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 4K processed frame in base64 is ~10 MB; leave room
HEARTBEAT_S = 10.0  # notice a server that vanished without closing (cable, suspend, crash)
CLOSE_TIMEOUT_S = 2.0  # how long to wait for the server's close handshake when leaving

try:  # aiohttp >= 3.11 names the close timeout explicitly; older versions take a float
    _WS_TIMEOUT: Any = aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S)
except AttributeError:  # pragma: no cover - old aiohttp
    _WS_TIMEOUT = CLOSE_TIMEOUT_S

# OpenSSL verify codes that mean "I do not know who signed this" (self-signed, unknown CA):
# the cases --ca-file fixes, unlike an expired certificate or a hostname mismatch.
_UNTRUSTED_ISSUER_CODES = {18, 19, 20, 21}


class RetryableConnectError(ConnectError):
    """A connection attempt that may work later (refused, timed out, reset, 5xx)."""


def ssl_context(config: ClientConfig) -> ssl.SSLContext | bool:
    """TLS settings for ws_connect: verify by default; trust `--ca-file`; `--insecure` skips checks."""
    if not config.server_url.startswith("wss://"):
        return True  # unused for ws://
    if config.insecure:
        return False
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return True


async def open_websocket(http: aiohttp.ClientSession, config: ClientConfig,
                         protocols: tuple[str, ...] | None = None) -> aiohttp.ClientWebSocketResponse:
    """One connection attempt, translated into `ConnectError`s that say what went wrong.
    `protocols`: the subprotocols to offer; by default pacing, unless --no-pacing."""
    url = config.server_url
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    try:
        return await asyncio.wait_for(
            http.ws_connect(
                url,
                headers=headers,
                ssl=ssl_context(config),
                max_msg_size=MAX_MESSAGE_BYTES,
                heartbeat=HEARTBEAT_S,
                compress=0,  # JPEG does not deflate
                timeout=_WS_TIMEOUT,
                protocols=protocols if protocols is not None else (PACING,) if config.pacing else (),
            ),
            timeout=config.connect_timeout_s,
        )
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 401:
            raise ConnectError(f"{url} refused the connection: HTTP 401 (wrong or missing --token)") from None
        if exc.status == 403:
            raise ConnectError(f"{url} refused the connection: HTTP 403 (forbidden)") from None
        if exc.status >= 500:
            raise RetryableConnectError(f"Cannot connect to {url}: HTTP {exc.status}") from None
        raise ConnectError(f"{url} is not a facestream WebSocket endpoint: HTTP {exc.status}") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        reason = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
        untrusted = getattr(exc.certificate_error, "verify_code", None) in _UNTRUSTED_ISSUER_CODES
        hint = " (use --ca-file for a self-signed server)" if untrusted else ""
        raise ConnectError(f"TLS failure connecting to {url}: certificate verify failed: {reason}{hint}") from None
    except aiohttp.ClientSSLError as exc:
        reason = getattr(exc.os_error, "reason", None) or str(exc.os_error)
        raise ConnectError(f"TLS failure connecting to {url}: {reason}") from None
    except aiohttp.ClientConnectorError as exc:
        error = exc.os_error
        reason = os.strerror(error.errno) if error is not None and error.errno else str(error or exc)
        raise RetryableConnectError(f"Cannot connect to {url}: {reason}") from None
    except asyncio.TimeoutError:
        raise RetryableConnectError(f"Cannot connect to {url}: no answer within {config.connect_timeout_s:g} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RetryableConnectError(f"Cannot connect to {url}: {exc or type(exc).__name__}") from None


async def connect(http: aiohttp.ClientSession, config: ClientConfig, policy: ReconnectPolicy,
                  stop: asyncio.Event | None = None,
                  protocols: tuple[str, ...] | None = None) -> aiohttp.ClientWebSocketResponse | None:
    """`open_websocket`, tried again after each failure that may pass, as `policy` says (its
    `ConnectError` once it gives up); None once `stop` is set."""
    stop = stop if stop is not None else asyncio.Event()  # `--stats` runs until it has its answer
    while not stop.is_set():
        try:
            return await open_websocket(http, config, protocols)
        except RetryableConnectError as exc:
            retry = policy.refused(str(exc))
            log.warning("%s", retry.note)
            await sleep_unless_stopped(stop, retry.delay_s)
    return None


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set (so Ctrl-C during a backoff is instant)."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def close_description(ws: aiohttp.ClientWebSocketResponse, raw: aiohttp.WSMessage) -> str:
    """'code 1013: server full (64 clients)' from a close message, for the user."""
    if raw.type == aiohttp.WSMsgType.CLOSE:
        code, reason = raw.data, raw.extra
    else:
        code, reason = ws.close_code, (str(ws.exception()) if ws.exception() else "")
    return f"code {code}: {reason}" if reason else f"code {code}"


def decode_message(message: aiohttp.WSMessage) -> Message | None:
    """A protocol message from a WebSocket message; None for control frames and for junk
    (logged), so one bad message never ends the stream."""
    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        return None
    try:
        return decode(message.data, binary=message.type == aiohttp.WSMsgType.BINARY)
    except ProtocolError as exc:
        log.warning("unreadable message from the server (%s): %s", exc.code, exc.message)
    return None


async def send_message(ws: aiohttp.ClientWebSocketResponse, message: Message, binary: bool) -> None:
    """Frames and source faces go binary in `--binary` mode; everything else is JSON text."""
    data, as_binary = encode(message, binary)
    if as_binary:
        await ws.send_bytes(data)
    else:
        await ws.send_str(data.decode())
