"""The WebSocket upgrade can never skip the token or the origin check, however it is spelled.

Written as an attacker tries it: raw HTTP requests over a real socket, with every Unicode
space character around `websocket` (aiohttp strips them before it upgrades), other cases,
odd `Connection` headers, and a fuzzer over header names, values and bytes. The oracle is
the server itself: a request that upgrades with the token and the allowed origin must be
refused without the token (401) or from another origin (403); one that does not upgrade gets
the page. No request ever switches protocols unchecked.
"""
from __future__ import annotations

import asyncio
import base64
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOKEN = "upgrade-test-token"
ALLOWED = "https://app.example"
FOREIGN = "https://evil.example"
SPACES = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]


async def status_of(port: int, head: bytes) -> int:
    """Send one raw request head; the status code of the answer (0: the server closed without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def upgrade_head(upgrade: bytes = b"websocket", connection: bytes = b"Upgrade", token: str | None = None,
                 origin: str | None = None, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [b"GET / HTTP/1.1", b"Host: 127.0.0.1", b"Upgrade: " + upgrade, b"Connection: " + connection,
             b"Sec-WebSocket-Key: " + key, b"Sec-WebSocket-Version: 13"]
    if token is not None:
        lines.append(b"Authorization: Bearer " + token.encode())
    if origin is not None:
        lines.append(b"Origin: " + origin.encode())
    lines += [name + b": " + value for name, value in extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def verdicts(port: int, **spelling) -> tuple[int, int, int]:
    """(with token and allowed origin, without token, with token from a foreign origin)."""
    return (await status_of(port, upgrade_head(token=TOKEN, origin=ALLOWED, **spelling)),
            await status_of(port, upgrade_head(origin=ALLOWED, **spelling)),
            await status_of(port, upgrade_head(token=TOKEN, origin=FOREIGN, **spelling)))


def assert_checked(allowed: int, tokenless: int, foreign: int, spelling: object) -> None:
    assert allowed != 0, f"{spelling!r}: the server hung up"
    if allowed == 101:  # it upgrades: both checks must have held
        assert (tokenless, foreign) == (401, 403), f"{spelling!r} upgraded unchecked: {tokenless}, {foreign}"
    else:  # it does not upgrade: nothing may upgrade either way
        assert 101 not in (tokenless, foreign), f"{spelling!r}: {allowed}, {tokenless}, {foreign}"


@pytest.fixture
async def port(start_server) -> int:
    server = await start_server(tokens=(TOKEN,), allowed_origins=(ALLOWED,))
    return server.port


async def test_the_plain_spelling_upgrades_only_with_token_and_origin(port):
    assert await verdicts(port) == (101, 401, 403)
    assert await status_of(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == 200  # the page stays open


@pytest.mark.parametrize("where", ["before", "after"])
async def test_unicode_spaces_around_websocket_never_skip_the_checks(port, where):
    upgraded = 0
    for space in SPACES:
        spelled = (space + "websocket" if where == "before" else "websocket" + space).encode()
        allowed, tokenless, foreign = await verdicts(port, upgrade=spelled)
        assert_checked(allowed, tokenless, foreign, spelled)
        upgraded += allowed == 101
    assert upgraded > 0, "aiohttp strips some Unicode spaces: those spellings must have been tried"


@pytest.mark.parametrize("upgrade, connection", [
    (b"WebSocket", b"Upgrade"), (b"WEBSOCKET", b"upgrade"), (b"websocket", b"keep-alive, Upgrade"),
    (b"websocket\t", b"Upgrade"), (b" websocket ", b"UPGRADE"), (b"websocket, h2c", b"Upgrade"),
    (b"websockets", b"Upgrade"), (b"websocket", b"close"), (b"web socket", b"Upgrade"),
])
async def test_other_spellings(port, upgrade, connection):
    allowed, tokenless, foreign = await verdicts(port, upgrade=upgrade, connection=connection)
    assert_checked(allowed, tokenless, foreign, (upgrade, connection))


header_names = st.sampled_from([b"Upgrade", b"upgrade", b"UPGRADE", b"Connection", b"Origin", b"Authorization",
                                b"Sec-WebSocket-Version", b"Sec-WebSocket-Protocol", b"X-Forwarded-For", b"Host"])
header_values = st.one_of(
    st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.builds(lambda a, b: (a + "websocket" + b).encode(), st.sampled_from(SPACES + [""]), st.sampled_from(SPACES + [""])),
    st.sampled_from([b"websocket", b"Upgrade", b"13", b"Bearer " + TOKEN.encode(), FOREIGN.encode(), b""]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(upgrade=header_values, connection=header_values,
       extra=st.lists(st.tuples(header_names, header_values), max_size=3).map(tuple))
async def test_fuzzed_upgrade_requests_never_skip_the_checks(port, upgrade, connection, extra):
    allowed, tokenless, foreign = await verdicts(port, upgrade=upgrade, connection=connection, extra=extra)
    if any(name.lower() in (b"authorization", b"origin") for name, _ in extra):
        # A second Authorization or Origin header makes the verdict the server's to choose,
        # but never an unchecked upgrade: without our token line, nothing may switch protocols.
        assert tokenless != 101 or any(value == b"Bearer " + TOKEN.encode() for _, value in extra)
        return
    assert_checked(allowed, tokenless, foreign, (upgrade, connection, extra))


def head_with(host: str, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [b"GET / HTTP/1.1", b"Host: " + host.encode(), b"Upgrade: websocket", b"Connection: Upgrade",
             b"Sec-WebSocket-Key: " + key, b"Sec-WebSocket-Version: 13", b"Origin: " + origin.encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def test_a_page_whose_name_points_here_is_not_the_servers_own(port):
    """DNS rebinding: the attacker's page at evil.example, its name resolving to this server,
    sends `Host: evil.example:PORT` with `Origin: http://evil.example:PORT`."""
    assert await status_of(port, head_with(f"evil.example:{port}", f"http://evil.example:{port}")) == 403
    assert await status_of(port, head_with(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")) == 401, \
        "the server's own page, opened at the address it listens on, passes the origin check (then needs the token)"


@pytest.mark.parametrize("spelling", ["https://app.example/", "https://APP.example", "https://app.example:443",
                                      "HTTPS://app.example"])
async def test_an_allowed_origin_is_allowed_however_it_is_spelled(port, spelling):
    assert await status_of(port, head_with("127.0.0.1", spelling)) == 401  # past the origin check


async def test_the_servers_public_url_may_connect(start_server):
    server = await start_server(tokens=(TOKEN,), allowed_origins=(ALLOWED,), public_urls=("http://facestream.lan:8765",))
    assert await status_of(server.port, head_with("facestream.lan:8765", "http://facestream.lan:8765")) == 401
    assert await status_of(server.port, head_with("facestream.lan:8765", "http://facestream.lan:9999")) == 403
