"""A video of real faces for Chromium's fake camera (`--use-file-for-fake-video-capture`).

The frames are insightface's group photo (six real people) shifted by a few pixels each, so
the stream has motion like a hand-held camera, and each frame's face boxes are the photo's
boxes moved by a known offset. Chromium loops the file.
"""
from __future__ import annotations

import math

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
