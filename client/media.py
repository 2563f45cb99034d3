"""Video files in and out of a job, with PyAV (FFmpeg): every frame with its own time, the
sound kept.

`VideoReader` demuxes the input once, in file order: the video stream's pictures (decoded,
BGR, each with its presentation time) and the audio streams' packets (as they are). The
`VideoWriter` encodes pictures with the input's time base and timestamps, so a variable
frame rate stays as it was, and writes the audio packets alongside, copied where the output
container takes their codec and re-encoded to AAC otherwise. Audio is held back until the
video has caught up with it, so the file is interleaved as it is written and one stopped
early (Ctrl-C) ends where its video ends. Blocking calls: the job runs them in threads.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

from .errors import SourceOpenError, UsageError

log = logging.getLogger(__name__)

VIDEO_CODEC = "libx264"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
AUDIO_FALLBACK_CODEC = "aac"


@dataclass(frozen=True)
class Picture:
    """One decoded video frame of the input."""

    index: int
    image: np.ndarray  # BGR
    pts: int  # in the video stream's time base
    time_s: float


class VideoReader:
    def __init__(self, path: Path) -> None:
        try:
            self.container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            raise SourceOpenError(f"Cannot open {path} as a video: {exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise UsageError(f"{path} has no video stream")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = list(self.container.streams.audio)
        self.time_base: Fraction = self.video.time_base or Fraction(1, 90000)
        self.rate: Fraction = self.video.average_rate or self.video.guessed_rate or Fraction(30)
        self.frame_count: int | None = self.video.frames or None  # what the container says, if anything
        self.width, self.height = self.video.codec_context.width, self.video.codec_context.height
        self._step = max(1, round(1 / (self.rate * self.time_base)))  # one frame, in time-base units
        self._index = 0
        self._last_pts = -1

    def __iter__(self) -> Iterator[Picture | av.Packet]:
        """Pictures and audio packets, in the order the file holds them."""
        for packet in self.container.demux(self.video, *self.audio):
            if packet.stream.type == "video":  # the last, empty packet flushes the decoder
                for frame in packet.decode():
                    yield self._picture(frame)
            elif packet.dts is not None:  # not the demuxer's closing empty packet
                yield packet

    def _picture(self, frame: av.VideoFrame) -> Picture:
        # A frame without a timestamp (some raw streams) is placed one frame after the last.
        pts = frame.pts if frame.pts is not None and frame.pts > self._last_pts else self._last_pts + self._step
        self._last_pts = pts
        picture = Picture(self._index, frame.to_ndarray(format="bgr24"), pts, float(pts * self.time_base))
        self._index += 1
        return picture

    def close(self) -> None:
        self.container.close()


class _AudioOut:
    """One input audio stream in the output: copied, or re-encoded where the container
    cannot hold its codec."""

    def __init__(self, output: av.container.OutputContainer, source: av.audio.AudioStream) -> None:
        if source.codec_context.name in output.supported_codecs:
            self.stream = output.add_stream_from_template(source)
            self._encoder = None
        else:
            log.info("audio codec %s does not fit this container: re-encoding it as %s",
                     source.codec_context.name, AUDIO_FALLBACK_CODEC)
            self.stream = output.add_stream(AUDIO_FALLBACK_CODEC, rate=source.codec_context.sample_rate,
                                            layout="mono" if source.codec_context.channels == 1 else "stereo")
            self._resampler = av.AudioResampler(format=self.stream.format, layout=self.stream.layout,
                                                rate=self.stream.rate)
            self.stream.codec_context.open()  # before the file's header is written, which needs its settings
            self._encoder = self.stream

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        if self._encoder is None:
            packet.stream = self.stream
            return [packet]
        out = []
        for frame in packet.decode():
            frame.pts = None  # the resampler and encoder count samples themselves
            for resampled in self._resampler.resample(frame):
                out += self._encoder.encode(resampled)
        return out

    def flush(self) -> list[av.Packet]:
        if self._encoder is None:
            return []
        return [*(p for f in self._resampler.resample(None) for p in self._encoder.encode(f)), *self._encoder.encode(None)]


class VideoWriter:
    def __init__(self, path: Path, width: int, height: int, time_base: Fraction, rate: Fraction, crf: int,
                 preset: str, audio: Sequence[av.audio.AudioStream] = ()) -> None:
        """Pictures at `time_base` timestamps (`rate`: the nominal frame rate), with `audio`'s
        packets alongside. `crf`: x264's constant rate factor: 0 lossless, 18 visually lossless,
        23 its default, 51 worst; `preset`: one of `X264_PRESETS`, faster ones costing less CPU
        for a somewhat bigger file."""
        try:
            self.container = av.open(str(path), "w")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise UsageError(f"Cannot write {path}: {exc}") from None
        self.video = self.container.add_stream(VIDEO_CODEC, rate=rate, options={"crf": str(crf), "preset": preset})
        self.video.width, self.video.height = width // 2 * 2, height // 2 * 2  # yuv420p: even sizes
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = self.video.codec_context.time_base = time_base  # timestamps as given
        self._time_base = time_base
        self._audio = {source.index: _AudioOut(self.container, source) for source in audio}
        self._held: collections.deque[av.Packet] = collections.deque()  # audio ahead of the video written
        self.video_time_s = 0.0

    def add_audio(self, packet: av.Packet) -> None:
        self._held.append(packet)
        self._release_audio(self.video_time_s)

    def write(self, image: np.ndarray, pts: int) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts, frame.time_base = pts, self._time_base
        for packet in self.video.encode(frame):
            self.container.mux(packet)
        self.video_time_s = float(pts * self._time_base)
        self._release_audio(self.video_time_s)

    def _release_audio(self, until_s: float) -> None:
        while self._held:
            packet = self._held[0]
            if packet.pts is not None and float(packet.pts * packet.time_base) > until_s:
                return
            self._held.popleft()
            for out in self._audio[packet.stream.index].packets(packet):
                self.container.mux(out)

    @classmethod
    def like(cls, path: Path, reader: VideoReader, crf: int, preset: str) -> "VideoWriter":
        """A writer that keeps `reader`'s size, timing and sound."""
        return cls(path, reader.width, reader.height, reader.time_base, reader.rate, crf, preset, reader.audio)

    def close(self, complete: bool) -> None:
        """Finish the file; `complete`: all of the input's audio, else only up to the video's end."""
        try:
            for packet in self.video.encode(None):
                self.container.mux(packet)
            self._release_audio(float("inf") if complete else self.video_time_s)
            for audio in self._audio.values():
                for packet in audio.flush():
                    self.container.mux(packet)
        finally:
            self.container.close()
