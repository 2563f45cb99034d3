"""WebRTC against binary WebSocket, side by side in one run: bytes each way, server CPU per frame,
and the returned stream's audio-to-video offset.

    .venv/bin/python perf/webrtc_bench.py                      # passthrough: the transports' own cost
    .venv/bin/python perf/webrtc_bench.py --processor classic  # with the real swap on every face
    .venv/bin/python perf/webrtc_bench.py --seconds 10 --repeat 3

One server (spawned), one client at a time, the transports alternating round by round so
the machine's noise falls on both. Each client streams a moving 640x480 scene of six real
faces at 30 fps for `--seconds`:
- binary WebSocket: `perf.drive.StreamDriver` (the client's in-flight window), bytes counted
  per message (JPEG and the 16-byte header);
- WebRTC: an aiortc peer whose camera track sends the same frames, bytes from its DTLS
  transport's statistics (SRTP packets with their RTP headers; UDP and IP headers, like
  TCP's on the other side, are not counted).
Server CPU per frame is the spawned server's CPU time over the phase divided by the frames
it answered (its `/stats` per transport), so it includes VP8 decode and encode for WebRTC
and JPEG decode and encode for WebSocket.

The audio-to-video offset: a WebRTC client sends frames that carry their index as a barcode
and a 100 ms beep once a second from the same clock; the offset is the beep's lag (capture
to the server sending it back) minus the lag of the frames the server sent around it. A
browser plays the two out in step by the server's RTCP sender reports, which map each
stream's timestamps to when it was sent: the send offset is the offset it shows. Goal:
within one frame (33 ms).
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import MediaStreamTrack, RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from client.config import ClientConfig  # noqa: E402
from client.images import decode_jpeg  # noqa: E402
from client.webrtc_media import CameraTrack  # noqa: E402
from client.whip import Whip, whip_url  # noqa: E402
from perf.drive import StreamDriver  # noqa: E402
from perf.frames import moving_sequence, source_face  # noqa: E402
from perf.spawn import cpu_seconds, spawned_server  # noqa: E402
from protocol import SourceFace, SourceFaceConfirmation, decode_json, encode_json  # noqa: E402
from protocol.webrtc import CONTROL_LABEL  # noqa: E402
from server.rtp_buffers import MarkedFrameBuffer, hold_audio_less, release_video_at_marker  # noqa: E402

log = logging.getLogger("webrtc_bench")

FPS = 30.0
WARM_UP_S = 3.0  # WebRTC's bitrate ramps up from a low start; the WebSocket fills its caches
SCENE = "group"
AUDIO_RATE = 48_000
AUDIO_FRAME_S = 0.02
FLASH_EVERY_S = 1.0  # a beep every second
BEEP_S = 0.1
BARCODE_BITS, BARCODE_CELL = 10, 24  # the frame index, readable after VP8


@dataclass
class Phase:
    transport: str
    seconds: float
    frames: int  # answered by the server in the phase
    bytes_up: int
    bytes_down: int
    server_cpu_s: float

    @property
    def up_kbit_s(self) -> float:
        return 8 * self.bytes_up / self.seconds / 1000

    @property
    def down_kbit_s(self) -> float:
        return 8 * self.bytes_down / self.seconds / 1000

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000 * self.server_cpu_s / max(1, self.frames)


async def served(http: aiohttp.ClientSession, base: str, transport: str) -> int:
    async with http.get(f"{base}/stats") as response:
        data = await response.json()
    return data["transports"].get(transport, {}).get("frames_processed", 0)


async def websocket_phase(http: aiohttp.ClientSession, server, frames: tuple[bytes, ...], face: bytes,
                          seconds: float) -> Phase:
    driver = StreamDriver(ClientConfig(server_url=server.ws_url, binary=True), frames, FPS)
    await driver.connect(http)
    try:
        await driver.send_source(face)
        await driver.stream(WARM_UP_S, "warm-up")
        cpu, answered = cpu_seconds(server.process.pid), await served(http, server.http_url, "websocket")
        phase = await driver.stream(seconds)
        cpu = cpu_seconds(server.process.pid) - cpu
        answered = await served(http, server.http_url, "websocket") - answered
    finally:
        await driver.close()
    return Phase("websocket", phase.seconds, answered, phase.bytes_up, phase.bytes_down, cpu)


def transport_bytes(stats: dict) -> tuple[int, int]:
    """Bytes sent and received on the peer's DTLS transport: SRTP packets (media, with their
    RTP headers) and SCTP (the data channel, idle while measuring); no UDP or IP headers."""
    transports = [s for s in stats.values() if s.type == "transport"]
    return sum(s.bytesSent for s in transports), sum(s.bytesReceived for s in transports)


class Peer:
    """An aiortc client: `video` (and `audio`) up, what comes back counted and timed."""

    def __init__(self, video: MediaStreamTrack, audio: MediaStreamTrack | None = None) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(video)
        if audio is not None:
            self.pc.addTrack(audio)
        self.channel = self.pc.createDataChannel(CONTROL_LABEL)
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)
        self.messages: asyncio.Queue = asyncio.Queue()
        self.channel.on("message", lambda data: self.messages.put_nowait(decode_json(data.encode())))
        self.video_in: list[tuple[float, int]] = []  # (arrival, the frame's barcode if read)
        self.audio_in: list[tuple[float, float]] = []  # (arrival, RMS)
        self.read_barcodes = False
        self.readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)
        self.video_buffer: MarkedFrameBuffer | None = None
        self.audio_held = 0
        self.whip: Whip | None = None
        self.resource = None

    def _on_track(self, track: MediaStreamTrack) -> None:
        """The server's own receive buffers here too, so that a frame's arrival is when its
        packets were all in, not after decoding (which this busy machine makes wait)."""
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        if track.kind == "video":
            self.video_buffer = release_video_at_marker(receiver)
        else:
            self.audio_held = hold_audio_less(receiver)
        self.readers.append(asyncio.create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "audio":
                    samples = frame.to_ndarray().astype(np.float32)
                    self.audio_in.append((now, float(np.sqrt(np.mean(samples ** 2)))))
                else:
                    completed = self.video_buffer.completed_at(frame.pts) if self.video_buffer else None
                    index = read_barcode(frame.to_ndarray(format="gray")) if self.read_barcodes else 0
                    self.video_in.append((completed or now, index))
        except MediaStreamError:
            pass

    async def connect(self, http: aiohttp.ClientSession, server_url: str, face: bytes) -> None:
        self.whip = Whip(whip_url(server_url))
        self.resource = await self.whip.publish(http, self.pc)
        await asyncio.wait_for(self.opened.wait(), 20)
        self.channel.send(encode_json(SourceFace(image=face)).decode())
        while not isinstance(answer := await asyncio.wait_for(self.messages.get(), 60), SourceFaceConfirmation):
            pass
        assert answer.status == "success", answer

    async def close(self, http: aiohttp.ClientSession) -> None:
        if self.whip is not None and self.resource is not None:
            await self.whip.end(http, self.resource)
        await self.pc.close()
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def webrtc_phase(http: aiohttp.ClientSession, server, images: list[np.ndarray], face: bytes,
                       seconds: float) -> Phase:
    index = 0

    async def read() -> np.ndarray:
        nonlocal index
        index += 1
        return images[index % len(images)]

    peer = Peer(CameraTrack(read, FPS))
    try:
        await peer.connect(http, server.ws_url, face)
        await asyncio.sleep(WARM_UP_S)
        cpu, answered = cpu_seconds(server.process.pid), await served(http, server.http_url, "webrtc")
        up, down = transport_bytes(await peer.pc.getStats())
        started = time.monotonic()
        await asyncio.sleep(seconds)
        up2, down2 = transport_bytes(await peer.pc.getStats())
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.process.pid) - cpu
        answered = await served(http, server.http_url, "webrtc") - answered
    finally:
        await peer.close(http)
    return Phase("webrtc", elapsed, answered, up2 - up, down2 - down, cpu)


# ---- audio-to-video offset ----------------------------------------------------------------
@dataclass
class Clock:
    started: float = field(default_factory=time.monotonic)

    async def until(self, moment_s: float) -> None:
        wait = self.started + moment_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


class BarcodedVideo(MediaStreamTrack):
    """The scene with each frame's index as a row of black and white cells (top left)."""

    kind = "video"

    def __init__(self, clock: Clock, scene: np.ndarray) -> None:
        super().__init__()
        self.clock, self.index, self.scene = clock, 0, scene

    async def recv(self) -> av.VideoFrame:
        moment = self.index / FPS
        await self.clock.until(moment)
        image = self.scene.copy()
        for bit in range(BARCODE_BITS):
            image[:BARCODE_CELL, bit * BARCODE_CELL:(bit + 1) * BARCODE_CELL] = 255 if self.index >> bit & 1 else 0
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = round(moment * 90_000), fractions.Fraction(1, 90_000)
        self.index += 1
        return frame


def read_barcode(gray: np.ndarray) -> int:
    middle = BARCODE_CELL // 2
    return sum(1 << bit for bit in range(BARCODE_BITS) if gray[middle, bit * BARCODE_CELL + middle] > 128)


class BeepAudio(MediaStreamTrack):
    """20 ms of silence at a time, a 1 kHz beep of `BEEP_S` at each flash's capture time."""

    kind = "audio"

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock, self.index = clock, 0

    async def recv(self) -> av.AudioFrame:
        samples = round(AUDIO_RATE * AUDIO_FRAME_S)
        moment = self.index * AUDIO_FRAME_S
        await self.clock.until(moment)
        t = moment + np.arange(samples) / AUDIO_RATE
        loud = (t % FLASH_EVERY_S) < BEEP_S
        pcm = np.where(loud, 12_000 * np.sin(2 * np.pi * 1000 * t), 0).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, self.index * samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.index += 1
        return frame


def onsets(events: list[tuple[float, float]], threshold: float) -> list[float]:
    """Arrival times where the value rises above `threshold` (once per beep)."""
    times, above = [], False
    for moment, value in events:
        if value > threshold and not above:
            times.append(moment)
        above = value > threshold
    return times


async def av_offset(http: aiohttp.ClientSession, server, scene: np.ndarray, face: bytes, seconds: float) -> list[float]:
    """Audio's lag minus video's, as the server sent them, once per beep (seconds).

    Send times are recovered from arrivals here, with the server's receive buffers: a video
    frame's is when its last packet came, an audio packet's when it was released less the
    packets its buffer held back (20 ms each)."""
    clock = Clock()
    peer = Peer(BarcodedVideo(clock, scene), BeepAudio(clock))
    peer.read_barcodes = True
    try:
        await peer.connect(http, server.ws_url, face)
        await asyncio.sleep(WARM_UP_S + seconds)
    finally:
        await peer.close(http)
    video_sent = [(arrival, arrival - (clock.started + index / FPS)) for arrival, index in peer.video_in]
    offsets = []
    for arrival in onsets(peer.audio_in, 2000.0)[1:]:  # the first may come before the stream settled
        sent = arrival - peer.audio_held * AUDIO_FRAME_S
        beep = clock.started + FLASH_EVERY_S * ((sent - clock.started) // FLASH_EVERY_S)
        near = [lag for moment, lag in video_sent if abs(moment - sent) < 0.5]
        if near:
            offsets.append((sent - beep) - statistics.median(near))
    return offsets


async def main(args: argparse.Namespace) -> None:
    frames = moving_sequence(SCENE, 640, 480, 85)
    images = [decode_jpeg(jpeg) for jpeg in frames]
    _, face = source_face(0)
    phases: list[Phase] = []
    async with spawned_server(["--frame-processor", args.processor]) as server, aiohttp.ClientSession() as http:
        for round_ in range(args.repeat):
            order = ("websocket", "webrtc") if round_ % 2 == 0 else ("webrtc", "websocket")
            for transport in order:
                if transport == "websocket":
                    phase = await websocket_phase(http, server, frames, face, args.seconds)
                else:
                    phase = await webrtc_phase(http, server, images, face, args.seconds)
                phases.append(phase)
                print(f"round {round_ + 1} {transport:9}: {phase.frames / phase.seconds:5.1f} fps answered, "
                      f"up {phase.up_kbit_s:7.0f} kbit/s, down {phase.down_kbit_s:7.0f} kbit/s, "
                      f"server CPU {phase.cpu_ms_per_frame:5.1f} ms/frame", flush=True)
        offsets = await av_offset(http, server, images[0], face, args.seconds)
    result: dict[str, object] = {"processor": args.processor, "seconds": args.seconds, "repeat": args.repeat}
    for transport in ("websocket", "webrtc"):
        mine = [p for p in phases if p.transport == transport]
        result[transport] = {
            "up_kbit_s": round(statistics.median(p.up_kbit_s for p in mine)),
            "down_kbit_s": round(statistics.median(p.down_kbit_s for p in mine)),
            "server_cpu_ms_per_frame": round(statistics.median(p.cpu_ms_per_frame for p in mine), 2),
            "fps": round(statistics.median(p.frames / p.seconds for p in mine), 1),
        }
    ws, rtc = result["websocket"], result["webrtc"]
    result["bytes_ratio_up"] = round(rtc["up_kbit_s"] / ws["up_kbit_s"], 3)  # type: ignore[index]
    result["bytes_ratio_down"] = round(rtc["down_kbit_s"] / ws["down_kbit_s"], 3)  # type: ignore[index]
    result["av_offset_ms"] = {  # audio after video as sent (negative: audio first)
        "beeps": len(offsets),
        "median": round(1000 * statistics.median(offsets), 1) if offsets else None,
        "max_abs": round(1000 * max(map(abs, offsets)), 1) if offsets else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--processor", default="passthrough", help="the server's --frame-processor")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (the order alternates)")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
