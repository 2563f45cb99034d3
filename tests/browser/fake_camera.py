"""A video of real faces for Chromium's fake camera (`--use-file-for-fake-video-capture`).

The frames are insightface's group photo (six real people) shifted by a few pixels each, so
the stream has motion like a hand-held camera, and each frame's face boxes are the photo's
boxes moved by a known offset. Chromium loops the file.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from tests import media

WIDTH, HEIGHT, FPS, FRAMES = 640, 480, 15, 30


def offsets(count: int = FRAMES) -> list[tuple[int, int]]:
    """A small circle, in whole pixels: (dx, dy) of frame i."""
    return [(round(6 * math.cos(2 * math.pi * i / count)), round(4 * math.sin(2 * math.pi * i / count))) for i in range(count)]


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def frames() -> list[np.ndarray]:
    photo = media.group_photo(WIDTH, HEIGHT)
    return [shifted(photo, dx, dy) for dx, dy in offsets()]


def write_y4m(path: Path, images: list[np.ndarray], fps: int = FPS) -> Path:
    """YUV4MPEG2, 4:2:0 (the only layout Chromium's file capture reads); BT.601 limited range like cameras."""
    height, width = images[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for image in images:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())  # Y plane, then U, then V
    return path


def write_wav(path: Path, seconds: float = 4.0, hz: float = 440.0, rate: int = 48000) -> Path:
    """A tone for Chromium's fake microphone (`--use-file-for-fake-audio-capture`, 16-bit PCM WAV)."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (12000 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path
