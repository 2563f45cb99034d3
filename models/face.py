"""A detected face and the geometry shared by the pipeline's models."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One face in one frame, in that frame's pixel coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    kps: np.ndarray  # (5, 2): eyes, nose tip, mouth corners (subject's right first)
    landmarks: np.ndarray | None = None  # (106, 2) from 2d106det, when computed
    embedding: np.ndarray | None = None  # (512,) L2-normalized ArcFace, when computed

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


def largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda face: face.area, default=None)


def letterbox_scale(height: int, width: int, size: int) -> float:
    """Scale that fits an image's longer side to `size` (the detector's input)."""
    return size / max(height, width)


def pad_to_multiple(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
