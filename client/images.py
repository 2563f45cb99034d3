"""JPEG in and out: where the client (and the benchmarks) turn pictures into bytes and back.

Frames travel as JPEG both ways (docs/protocol.md), so the live stream, the video job, the
WebRTC source photo and perf/'s frame sequences all encode and decode through these two
functions. They block (OpenCV): the streaming code calls them in a worker thread.
"""
from __future__ import annotations

import cv2
import numpy as np


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The picture in `data` (a JPEG, or any format OpenCV reads, such as a PNG source photo);
    None when it holds none."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
