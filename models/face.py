"""A detected face and the geometry shared by the pipeline's models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .host import HostPool


@dataclass
class Face:
    """One face in one frame, in that frame's pixel coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    kps: np.ndarray  # (5, 2): eyes, nose tip, mouth corners (subject's right first)
    landmarks: np.ndarray | None = None  # (106, 2) from 2d106det, when computed
    embedding: np.ndarray | None = None  # (512,) L2-normalized ArcFace, when computed
    raw_embedding: np.ndarray | None = None  # the same before normalising: what embedding converters take

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


def _pad_to_multiple(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def letterbox_batch(images: Sequence[np.ndarray], size: int, multiple: int,
                    host: HostPool | None = None) -> tuple[np.ndarray, list[float]]:
    """All images in one uint8 (N, H, W, 3) canvas for a single detector call.

    Each image is scaled so its longer side is `size` and placed top-left (so frame
    coordinates are detector coordinates divided by its scale); H and W are the largest
    scaled sides rounded up to a multiple of the network's stride.
    """
    scales = [size / max(image.shape[:2]) for image in images]
    sizes = [(round(image.shape[1] * scale), round(image.shape[0] * scale)) for image, scale in zip(images, scales)]
    width = _pad_to_multiple(max(w for w, _ in sizes), multiple)
    height = _pad_to_multiple(max(h for _, h in sizes), multiple)
    canvas = np.zeros((len(images), height, width, 3), np.uint8)

    def place(index: int) -> None:
        w, h = sizes[index]
        cv2.resize(images[index], (w, h), dst=canvas[index, :h, :w], interpolation=cv2.INTER_LINEAR)

    (host or HostPool()).map("detect_pre", place, range(len(images)))
    return canvas, scales


def non_max_suppression(score: np.ndarray, box: np.ndarray, kps: np.ndarray, threshold: float, iou: float) -> list[Face]:
    """One face per object, best score first (boxes x1, y1, x2, y2; OpenCV's NMS)."""
    if score.size == 0:
        return []
    xywh = np.column_stack([box[:, :2], box[:, 2:] - box[:, :2]])
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), score.tolist(), threshold, iou)
    order = sorted(np.asarray(keep).reshape(-1), key=lambda i: -score[i])
    return [Face(box=box[i].astype(np.float32), score=float(score[i]), kps=kps[i].astype(np.float32)) for i in order]


@dataclass(frozen=True)
class SwapJob:
    """One face to swap: which frame, where, with whose identity (the swapper's `source` input),
    and at what pixel boost (models/pixel_boost.py: the model on a crop `boost` times its size)."""

    frame_index: int
    face: Face
    identity: np.ndarray
    boost: int = 1
