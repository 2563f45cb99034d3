"""WHIP from the client's side (RFC 9725): ask for the ICE servers, offer, get the answer, end.

aiortc gathers every ICE candidate while it sets the local description, so the offer goes
out whole in one POST (no trickle). Failures become the same `ConnectError`s a WebSocket
connection gives, retryable or not.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import AsyncIterator

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from yarl import URL

from protocol.webrtc import SDP_CONTENT_TYPE as SDP, WHIP_PATH

from .errors import ConnectError
from .transport import RetryableConnectError



def whip_url(server_url: str) -> URL:
    """`ws://host:8765/` -> `http://host:8765/whip` (and wss -> https): one server, two transports."""
    url = URL(server_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return url.with_scheme(scheme).with_path(url.path.rstrip("/") + WHIP_PATH).with_query(None)


@dataclass(frozen=True)
class Whip:
    """Where and how to signal: the endpoint, the token, the TLS settings, the time allowed."""

    url: URL
    token: str | None = None
    ssl: ssl.SSLContext | bool = True
    timeout_s: float = 10.0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def configuration(self, http: aiohttp.ClientSession) -> RTCConfiguration:
        """The server's ICE servers (`OPTIONS`, its `Link: rel="ice-server"` headers)."""
        async with self._request(http, "OPTIONS", self.url) as response:
            await _check(response, self.url)
            servers = [RTCIceServer(urls=str(link["url"]), username=link.get("username"),
                                    credential=link.get("credential"))
                       for link in response.links.getall("ice-server", [])]
        return RTCConfiguration(iceServers=servers)

    async def publish(self, http: aiohttp.ClientSession, pc: RTCPeerConnection) -> URL:
        """Offer `pc`'s tracks and channels, apply the answer; the session's URL (to `end` it)."""
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        async with self._request(http, "POST", self.url, data=offer, headers={"Content-Type": SDP}) as response:
            await _check(response, self.url)
            if response.status != 201 or response.content_type != SDP or "Location" not in response.headers:
                raise ConnectError(f"{self.url} is not a WHIP endpoint: HTTP {response.status} {response.content_type}")
            answer = await response.text()
            resource = self.url.join(URL(response.headers["Location"]))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return resource

    async def end(self, http: aiohttp.ClientSession, resource: URL) -> None:
        """`DELETE` the session (its slot is free at once); a server already gone is fine."""
        try:
            async with self._request(http, "DELETE", resource) as response:
                if response.status not in (200, 204, 404):
                    await _check(response, resource)
        except (ConnectError, aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass

    @contextlib.asynccontextmanager
    async def _request(self, http: aiohttp.ClientSession, method: str, url: URL,
                       headers: dict[str, str] | None = None, data: str | None = None
                       ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request whose connection failures come out as `RetryableConnectError`."""
        try:
            response = await http.request(method, url, headers={**self.headers, **(headers or {})}, data=data,
                                          ssl=self.ssl, timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        except asyncio.TimeoutError:
            raise RetryableConnectError(f"Cannot connect to {url}: no answer within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RetryableConnectError(f"Cannot connect to {url}: {exc or type(exc).__name__}") from None
        async with response:
            yield response


async def _check(response: aiohttp.ClientResponse, url: URL) -> None:
    """Raise the `ConnectError` an error status means."""
    if response.status < 400:
        return
    reason = (await response.text()).strip()
    if response.status == 401:
        raise ConnectError(f"{url} refused the connection: HTTP 401 (wrong or missing --token)")
    if response.status == 403:
        raise ConnectError(f"{url} refused the connection: HTTP 403 ({reason or 'forbidden'})")
    if response.status == 404 or response.status == 405:
        raise ConnectError(f"{url} does not take WebRTC clients (HTTP {response.status}): started with --no-webrtc, "
                           "or an older server; use --transport websocket")
    if response.status >= 500:
        raise RetryableConnectError(f"Cannot connect to {url}: HTTP {response.status} {reason}")
    raise ConnectError(f"{url} refused the offer: HTTP {response.status} {reason}")
