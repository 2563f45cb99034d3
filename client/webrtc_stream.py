"""`--transport webrtc`: the live stream over a WebRTC peer connection instead of a WebSocket.

The same run as `StreamClient`'s (source face first, live options, the window, the
recording and the virtual camera, reconnects as `reconnect.ReconnectPolicy` says), on one
peer connection per attempt: the camera goes up a video track as VP8/H.264 at the stream's
fps (read on the encoder's demand, never queued), the swapped video comes back on the same
transceiver, and the control messages travel on the `control` data channel. There is no
in-flight window to keep: WebRTC's own congestion control sets the bitrate, and the server
keeps only the newest decoded frame.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from protocol import Message, ProtocolError, Reconnect, SourceFace, decode_json, encode_json
from protocol.webrtc import CONTROL_LABEL, MAX_CHANNEL_MESSAGE_BYTES

from .exchange import ConnectionEnded
from .images import decode_jpeg, encode_jpeg
from .reconnect import reconnect_policy
from .transport import RetryableConnectError, ssl_context
from .webrtc_media import CameraTrack
from .whip import Whip, whip_url

if TYPE_CHECKING:
    from .connection import StreamClient

log = logging.getLogger(__name__)

SOURCE_END_GRACE_S = 1.0  # after the input file ends, the frames still on their way back may arrive
POLL_S = 0.5  # how often a wait for a control message looks whether the connection ended


def picture(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="bgr24")


def fits_channel(message: Message) -> bool:
    return len(encode_json(message)) <= MAX_CHANNEL_MESSAGE_BYTES


def face_for_channel(face: bytes) -> bytes:
    """The source photo as it can travel on the data channel: unchanged when its message
    fits, else re-encoded as a JPEG, smaller each step until it does (the server decodes
    photos at detection size anyway; a phone's 4 MB photo loses nothing it would use)."""
    if fits_channel(SourceFace(image=face)):
        return face
    image = decode_jpeg(face)
    if image is None:
        return face  # not a picture OpenCV reads: the server says what is wrong with it
    while True:
        encoded = encode_jpeg(image, 90)
        if fits_channel(SourceFace(image=encoded)):
            log.info("source face re-encoded to %dx%d (%d KB) to fit the WebRTC control channel",
                     image.shape[1], image.shape[0], len(encoded) // 1024)
            return encoded
        image = cv2.resize(image, (max(1, image.shape[1] * 3 // 4), max(1, image.shape[0] * 3 // 4)),
                           interpolation=cv2.INTER_AREA)


class PeerLink:
    """One attempt: a peer connection with the camera track, the control channel, and the
    swapped video coming back."""

    def __init__(self, client: "StreamClient", pc: RTCPeerConnection) -> None:
        self.client = client
        self.pc = pc
        self.camera = CameraTrack(self._read, client.config.fps)
        pc.addTrack(self.camera)
        self.channel = pc.createDataChannel(CONTROL_LABEL)
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.opened = asyncio.Event()
        self.ended = asyncio.Event()  # the connection failed or closed
        self.confirmed = asyncio.Event()  # the source face is set: frames may go (none is sent unswapped)
        self.frames_back = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    async def _read(self) -> np.ndarray | None:
        await self.confirmed.wait()
        image = await self.client.read_source()
        if image is None:
            log.info("%s ended", self.client.source.description)
            asyncio.get_running_loop().call_later(SOURCE_END_GRACE_S, self.client.stop)
            return None
        self.client.stats.frame_sent(time.monotonic())
        return image

    def _on_message(self, data: str | bytes) -> None:
        try:
            self.messages.put_nowait(decode_json(data if isinstance(data, bytes) else data.encode()))
        except ProtocolError as exc:
            log.warning("unreadable message from the server (%s): %s", exc.code, exc.message)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._tasks.append(asyncio.create_task(self._receive(track), name="webrtc-video-in"))

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            log.warning("WebRTC connection %s", self.pc.connectionState)
            self.ended.set()

    async def _receive(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.client.stopping:
                    return
                self.frames_back += 1
                self.client.stats.frame_received(time.monotonic(), None)
                await self.client.show(picture, frame)
        except MediaStreamError:
            self.ended.set()

    async def send(self, message: Message) -> None:
        if self.channel.readyState == "open":
            self.channel.send(encode_json(message).decode())

    async def next_message(self, timeout_s: float) -> Message | None:
        """The next control message within `timeout_s` (None if none came); `ConnectionEnded`
        once the connection has ended."""
        if self.ended.is_set():
            raise ConnectionEnded("the WebRTC connection ended")
        try:
            return await asyncio.wait_for(self.messages.get(), min(timeout_s, POLL_S))
        except asyncio.TimeoutError:
            return None

    async def confirm_source(self) -> bool:
        """Send the face once the channel is open; True once it is accepted."""
        timeout_s = self.client.config.confirm_timeout_s
        try:
            await asyncio.wait_for(self.opened.wait(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("the control channel did not open within %.0f s", timeout_s)
            return False
        if not await self.client.hand_over_face(self.send, self.next_message, face_for_channel(self.client.face)):
            return False
        self.confirmed.set()
        return True

    async def stream(self) -> None:
        """Hand control messages to the client until the connection ends or it stops."""
        self.client.send_control = self.send
        try:
            await self.send(self.client.controls.on_connect())
            while not self.client.stopping and not self.ended.is_set():
                message = await self.next_message(0.25)
                if isinstance(message, Reconnect):
                    self.client.asked = message
                    return
                if message is not None:
                    await self.client.handle_control(message)
        finally:
            self.client.send_control = None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


async def stream_webrtc(client: "StreamClient", http: aiohttp.ClientSession) -> None:
    """The connect loop of `--transport webrtc`, under the WebSocket loop's policy."""
    config = client.config
    whip = Whip(whip_url(config.server_url), config.token, ssl_context(config), config.connect_timeout_s)
    policy = reconnect_policy(config)
    while not client.stopping:
        link: PeerLink | None = None
        resource = None
        confirmed = False
        try:
            pc = RTCPeerConnection(await whip.configuration(http))
            link = PeerLink(client, pc)
            resource = await client.unless_stopped(whip.publish(http, pc))
            if resource is None:
                return  # stopped while connecting
            confirmed = bool(await client.unless_stopped(link.confirm_source()))
            if confirmed:
                if policy.connected():
                    client.stats.reconnects += 1
                await link.stream()
        except RetryableConnectError as exc:
            await client.retry_after(policy.refused(str(exc)))
            continue
        finally:
            if resource is not None:
                await whip.end(http, resource)
            if link is not None:
                await link.close()
        if client.stopping:
            return
        asked, client.asked = client.asked, None
        unconfirmed = None if confirmed else f"{config.server_url} never confirmed the source face over WebRTC"
        await client.retry_after(policy.ended(f"WebRTC connection to {config.server_url} lost; reconnecting",
                                              asked=asked, delivered=link.frames_back > 0, unconfirmed=unconfirmed))
