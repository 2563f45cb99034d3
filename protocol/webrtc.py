"""The WebRTC transport's fixed names, shared by the server, the client and the page's docs.

Signalling is WHIP (RFC 9725) at `WHIP_PATH`; the JSON control messages travel on a data
channel labelled `CONTROL_LABEL`; video timestamps count RTP's 90 kHz clock.
"""
from __future__ import annotations

from fractions import Fraction

WHIP_PATH = "/whip"
SDP_CONTENT_TYPE = "application/sdp"
CONTROL_LABEL = "control"
VIDEO_CLOCK = Fraction(1, 90_000)
# The largest data channel message both ends take: aiortc and browsers announce 256 KB
# (`a=max-message-size`). A source photo's JSON message must fit: clients shrink larger photos.
MAX_CHANNEL_MESSAGE_BYTES = 262_144
