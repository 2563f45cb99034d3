"""`--transport webrtc`: the live stream over a WebRTC peer connection instead of a WebSocket.

The same run as `StreamClient`'s (source face first, live options, the window, the
recording and the virtual camera, reconnects with backoff), on one peer connection per
attempt: the camera goes up a video track as VP8/H.264 at the stream's fps (read on the
encoder's demand, never queued), the swapped video comes back on the same transceiver, and
the control messages travel on the `control` data channel. There is no in-flight window to
keep: WebRTC's own congestion control sets the bitrate, and the server keeps only the
newest decoded frame.
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

from protocol import Message, ProtocolError, Reconnect, SourceFace, SourceFaceConfirmation, decode_json, encode_json
from protocol.webrtc import CONTROL_LABEL, MAX_CHANNEL_MESSAGE_BYTES

from .backoff import Backoff, ConnectRetries
from .transport import RetryableConnectError, ssl_context
from .webrtc_media import CameraTrack
from .whip import Whip, whip_url

if TYPE_CHECKING:
    from .connection import StreamClient

log = logging.getLogger(__name__)

SOURCE_END_GRACE_S = 1.0  # after the input file ends, the frames still on their way back may arrive


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
    image = cv2.imdecode(np.frombuffer(face, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return face  # not a picture OpenCV reads: the server says what is wrong with it
    while True:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok and fits_channel(SourceFace(image=encoded.tobytes())):
            log.info("source face re-encoded to %dx%d (%d KB) to fit the WebRTC control channel",
                     image.shape[1], image.shape[0], len(encoded) // 1024)
            return encoded.tobytes()
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
        self.ended = asyncio.Event()  # the connection failed or closed, or the server asked to reconnect
        self.confirmed = asyncio.Event()  # the source face is set: frames may go (none is sent unswapped)
        self.reconnect: Reconnect | None = None
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

    async def next_message(self, timeout: float) -> Message | None:
        try:
            return await asyncio.wait_for(self.messages.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def confirm_source(self) -> bool:
        """Send the face once the channel is open; True once it is accepted."""
        config = self.client.config
        deadline = time.monotonic() + config.confirm_timeout_s
        try:
            await asyncio.wait_for(self.opened.wait(), config.confirm_timeout_s)
        except asyncio.TimeoutError:
            log.warning("the control channel did not open within %.0f s", config.confirm_timeout_s)
            return False
        await self.send(SourceFace(image=face_for_channel(self.client.face)))
        while (remaining := deadline - time.monotonic()) > 0 and not self.ended.is_set():
            message = await self.next_message(min(remaining, 0.5))
            if isinstance(message, SourceFaceConfirmation):
                self.client.face_accepted(message)
                self.confirmed.set()
                return True
            if isinstance(message, Reconnect):
                self.reconnect = message
                return False
            if message is not None:
                await self.client.handle_control(message)
        return False

    async def stream(self) -> None:
        """Hand control messages to the client until the connection ends or it stops."""
        self.client.send_control = self.send
        try:
            await self.send(self.client.controls.on_connect())
            while not self.client.stopping and not self.ended.is_set():
                message = await self.next_message(0.25)
                if isinstance(message, Reconnect):
                    self.reconnect = message
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
    """The connect loop of `--transport webrtc`: the WebSocket loop's rules (few retries before
    the first success, backoff after, a server's `reconnect` followed at once)."""
    config = client.config
    whip = Whip(whip_url(config.server_url), config.token, ssl_context(config), config.connect_timeout_s)
    backoff = Backoff(max_s=config.reconnect_max_s)
    retries = ConnectRetries(config.connect_retries)
    while not client.stopping:
        link: PeerLink | None = None
        resource = None
        try:
            pc = RTCPeerConnection(await whip.configuration(http))
            link = PeerLink(client, pc)
            resource = await client.unless_stopped(whip.publish(http, pc))
            if resource is None:
                return  # stopped while connecting
            confirmed = bool(await client.unless_stopped(link.confirm_source()))
            if confirmed:
                if retries.connected_once:
                    client.stats.reconnects += 1
                retries.connected()
                await link.stream()
            elif link.reconnect is None and not client.stopping:
                retries.failed(f"{config.server_url} never confirmed the source face over WebRTC")
        except RetryableConnectError as exc:
            await client.sleep(retries.retry_delay(str(exc), backoff))
            continue
        finally:
            if resource is not None:
                await whip.end(http, resource)
            if link is not None:
                await link.close()
        if client.stopping:
            return
        if link.frames_back:
            backoff.reset()
        if link.reconnect is not None:
            await client.follow_reconnect(link.reconnect)
            continue
        delay = 0.0 if link.frames_back else backoff.next_delay()
        log.warning("WebRTC connection to %s lost; reconnecting in %.1f s", config.server_url, delay)
        await client.sleep(delay)
