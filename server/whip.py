"""WHIP signalling (RFC 9725), the HTTP side: read an SDP offer, answer with the session's URL.

A client POSTs its offer (`Content-Type: application/sdp`, every ICE candidate gathered,
no trickle) to `/whip` and gets `201 Created` with the SDP answer and `Location:
/whip/<session id>`; `DELETE` on that URL ends the session. The ICE servers a client may
need behind NAT are announced the way WHIP does, as `Link: <url>; rel="ice-server"` headers
(on the 201 and on `OPTIONS /whip`, so a client can ask before it makes its offer).
"""
from __future__ import annotations

from aiohttp import hdrs, web
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.sdp import SessionDescription

from protocol.webrtc import SDP_CONTENT_TYPE as SDP, WHIP_PATH

from .config import IceServer

MAX_OFFER_BYTES = 64 * 1024  # a browser's offer with audio, video and a data channel is under 10 KB


async def read_offer(request: web.Request) -> str:
    """The request's SDP offer, checked: 415, 413 or 400 with the reason otherwise."""
    if request.content_type != SDP:
        raise web.HTTPUnsupportedMediaType(text=f"send the SDP offer as {SDP}\n")
    body = await request.content.read(MAX_OFFER_BYTES + 1)
    if len(body) > MAX_OFFER_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_OFFER_BYTES, len(body), text="SDP offer too large\n")
    try:
        offer = body.decode()
        description = SessionDescription.parse(offer)
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise web.HTTPBadRequest(text=f"unreadable SDP offer: {exc}\n") from None
    video = [media for media in description.media if media.kind == "video"]
    if not video or video[0].direction not in (None, "sendrecv"):
        raise web.HTTPBadRequest(text="the offer needs a sendrecv video transceiver: the camera goes up it "
                                      "and the swapped video comes back on it\n")
    return offer


def ice_links(servers: tuple[IceServer, ...]) -> list[tuple[str, str]]:
    """`Link` headers announcing the ICE servers (RFC 9725, section 4.6)."""
    links = []
    for server in servers:
        value = f'<{server.url}>; rel="ice-server"'
        if server.username is not None:
            value += f'; username="{server.username}"; credential="{server.credential}"; credential-type="password"'
        links.append((hdrs.LINK, value))
    return links


def rtc_configuration(servers: tuple[IceServer, ...]) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
                                        for s in servers])


def created(answer: str, session_id: str, servers: tuple[IceServer, ...]) -> web.Response:
    headers = [(hdrs.LOCATION, f"{WHIP_PATH}/{session_id}"), *ice_links(servers)]
    return web.Response(status=201, text=answer, content_type=SDP, headers=headers)


def options(servers: tuple[IceServer, ...]) -> web.Response:
    return web.Response(status=204, headers=[(hdrs.ALLOW, "OPTIONS, POST"), *ice_links(servers)])
