"""Real face frames for the benchmarks: the sample photos that installed packages ship, in motion.

A load test must send what a webcam sends: real faces, so the detector and the swapper do
their real work, in frames that differ from each other, so no cache and no encoder shortcut
flatters the numbers. The photos are insightface's `t1.jpg` (six faces) and
`Tom_Hanks_54745.png` (a 112x112 face crop), and scikit-image's astronaut (one face).
Sequences are encoded once, up front: encoding while streaming would make the probe, not
the server, the bottleneck.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from client.images import encode_jpeg
from models import registry
from client.sources import fit

LOOP_FRAMES = 30  # one second of motion at 30 fps, then it repeats seamlessly
SOURCE_FACES = ("tom", "astronaut")  # one face each: what clients send as `source_face`
SCENES = ("group", "astronaut", "tom")  # what the camera sees


def package_dir(name: str) -> Path:
    """Where an installed package lives: the sample photos come with skimage and insightface."""
    installed = registry.package_dir(name)
    if installed is None:
        raise RuntimeError(f"the package {name} is not installed; it ships the sample photos")
    return installed


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """A sample photo by short name (`group`, `tom`, `astronaut`), BGR at its own size."""
    if name == "astronaut":
        path = package_dir("skimage") / "data" / "astronaut.png"
    elif name == "group":
        path = package_dir("insightface") / "data" / "images" / "t1.jpg"
    elif name == "tom":
        path = package_dir("insightface") / "data" / "images" / "Tom_Hanks_54745.png"
    else:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(SCENES)}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read the sample photo {path}")
    return image


def source_face(index: int) -> tuple[str, bytes]:
    """The face client `index` wears: the one-face photos in turn, as (name, JPEG)."""
    name = SOURCE_FACES[index % len(SOURCE_FACES)]
    return name, encode_jpeg(photo(name), 95)


def still_jpeg(scene: str, width: int = 640, height: int = 480, quality: int = 85) -> bytes:
    """One frame of `scene` at the stream size."""
    return encode_jpeg(fit(photo(scene), width, height), quality)


@lru_cache(maxsize=64)
def moving_sequence(scene: str, width: int, height: int, quality: int, variant: int = 0) -> tuple[bytes, ...]:
    """`LOOP_FRAMES` JPEGs of a slow circular drift, zoom and tilt over `scene`, looping without a jump.

    `variant` shifts the motion's phase, so clients streaming the same scene still send
    different frames. Kept small: the faces move a few pixels per frame, as in a video call.
    """
    base = fit(photo(scene), width, height)
    centre = (width / 2, height / 2)
    frames = []
    for index in range(LOOP_FRAMES):
        angle = 2 * math.pi * (index / LOOP_FRAMES + variant * 0.618034)
        matrix = cv2.getRotationMatrix2D(centre, 2.0 * math.sin(angle), 1.08 + 0.04 * math.cos(angle))
        matrix[:, 2] += (0.03 * width * math.cos(angle), 0.03 * height * math.sin(angle))
        moved = cv2.warpAffine(base, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frames.append(encode_jpeg(moved, quality))
    return tuple(frames)


def write_clip(path: Path, images: Iterable[np.ndarray], times_s: Sequence[float], audio_s: float = 0.0,
               audio_codec: str = "aac", crf: int = 12) -> Path:
    """A video file (H.264, near-lossless) of `images` (BGR, one size) shown at exactly
    `times_s` (any spacing: a variable frame rate), with `audio_s` seconds of a 440 Hz tone
    (48 kHz mono) when asked: what a video job reads."""
    import av  # only the benchmarks and tests that make clips need it loaded

    time_base = Fraction(1, 1000)
    images = iter(images)
    first = next(images)
    with av.open(str(path), "w") as container:  # every stream is added before the first is written
        video = container.add_stream("libx264", rate=30, options={"crf": str(crf)})
        video.pix_fmt, video.time_base = "yuv420p", time_base
        video.codec_context.time_base = time_base
        video.height, video.width = first.shape[:2]
        audio = container.add_stream(audio_codec, rate=48000, layout="mono") if audio_s else None
        for image, at in zip(itertools.chain([first], images), times_s):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(at / time_base), time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(48000 * audio_s)) / 48000)
            tone = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None, :], format="fltp", layout="mono")
            tone.sample_rate, tone.pts = 48000, 0
            container.mux(audio.encode(tone))
            container.mux(audio.encode(None))
    return path
