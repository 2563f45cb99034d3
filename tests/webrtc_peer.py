"""An aiortc peer of the server for tests: a camera track, the `control` data channel, and
the frames and messages that come back. Written from the documented protocol (WHIP, the
`control` channel, docs/protocol.md's messages)."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from yarl import URL

from client.webrtc_media import CameraTrack
from client.whip import Whip, whip_url
from protocol import Message, decode_json, encode_json
from protocol.webrtc import CONTROL_LABEL

TIMEOUT_S = 20.0


class TestPeer:
    """Streams `image` (or what `read` gives) at `fps`; keeps what comes back."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, image: np.ndarray, fps: float = 30.0, audio: MediaStreamTrack | None = None) -> None:
        self.pc = RTCPeerConnection()
        self.image = image

        async def read() -> np.ndarray:
            return self.image

        self.camera = CameraTrack(read, fps)
        self.pc.addTrack(self.camera)
        if audio is not None:
            self.pc.addTrack(audio)
        self.channel = self.pc.createDataChannel(CONTROL_LABEL)
        self._opened = asyncio.Event()
        self.channel.on("open", self._opened.set)
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.channel.on("message", lambda data: self.messages.put_nowait(decode_json(data)))
        self.frames: list[tuple[float, np.ndarray]] = []  # (arrival, BGR), the newest 30
        self.received = 0
        self.audio_frames: list[tuple[float, object]] = []
        self._new_frame = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)
        self.resource: URL | None = None
        self.whip: Whip | None = None

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "audio":
                    self.audio_frames.append((time.monotonic(), frame))
                    continue
                self.frames = [*self.frames[-29:], (time.monotonic(), frame.to_ndarray(format="bgr24"))]
                self.received += 1
                self._new_frame.set()
        except MediaStreamError:
            pass

    async def connect(self, http: aiohttp.ClientSession, server_url: str, token: str | None = None) -> URL:
        self.whip = Whip(whip_url(server_url), token)
        self.resource = await self.whip.publish(http, self.pc)
        await asyncio.wait_for(self._opened.wait(), TIMEOUT_S)
        return self.resource

    def send(self, message: Message) -> None:
        self.channel.send(encode_json(message).decode())

    async def receive(self, kind: type, timeout: float = TIMEOUT_S) -> Message:
        """The next message of type `kind` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(self.messages.get(), max(0.0, deadline - time.monotonic()))
            if isinstance(message, kind):
                return message

    async def frame_after(self, moment: float, timeout: float = TIMEOUT_S) -> np.ndarray:
        """The first frame that arrived after `moment` (time.monotonic())."""
        deadline = time.monotonic() + timeout
        while not self.frames or self.frames[-1][0] <= moment:
            self._new_frame.clear()
            await asyncio.wait_for(self._new_frame.wait(), max(0.0, deadline - time.monotonic()))
        return self.frames[-1][1]

    async def close(self, http: aiohttp.ClientSession | None = None) -> None:
        if http is not None and self.whip is not None and self.resource is not None:
            await self.whip.end(http, self.resource)
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
