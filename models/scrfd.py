"""SCRFD face detector (InsightFace), batched: one ONNX call for all frames of a batch.

Frames are letterboxed (scaled so the longer side is `det_size`, padded bottom-right)
into one tensor. The embedded 500M model keeps a batch axis in its outputs; det_10g
concatenates the rows of all images, so its outputs are split per image here.
Box/keypoint decoding uses insightface's own `distance2bbox` / `distance2kps`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnxruntime as ort
from insightface.model_zoo.scrfd import distance2bbox, distance2kps

from .face import Face, letterbox_batch, non_max_suppression
from .host import HostPool

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2


class ScrfdDetector:
    def __init__(self, session: ort.InferenceSession, det_size: int = 320, threshold: float = 0.5, nms_iou: float = 0.4,
                 host: HostPool | None = None) -> None:
        self.session = session
        self.host = host or HostPool()
        self.det_size = det_size
        self.threshold = threshold
        self.nms_iou = nms_iou
        self._input_name = session.get_inputs()[0].name
        self._centers: dict[tuple[int, int, int], np.ndarray] = {}

    def _anchor_centers(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centers:
            grid = np.stack(np.mgrid[:height, :width][::-1], axis=-1).astype(np.float32)
            centers = (grid * stride).reshape(-1, 2)
            self._centers[key] = np.repeat(centers, ANCHORS_PER_CELL, axis=0)
        return self._centers[key]

    def _blob(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        canvas, scales = letterbox_batch(images, self.det_size, STRIDES[-1], self.host)
        with self.host.stage("detect_pre"):
            blob = (canvas[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) - 127.5) / 128.0  # BGR -> RGB, NCHW
            return np.ascontiguousarray(blob), scales

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of every image, each list sorted by score (best first)."""
        if not images:
            return []
        blob, scales = self._blob(images)
        outputs = self.session.run(None, {self._input_name: blob})
        count, height, width = len(images), blob.shape[2], blob.shape[3]
        per_image = [o.reshape(count, -1, o.shape[-1]) for o in outputs]  # both layouts
        return self.host.map("detect_post", lambda index: self._decode(index, per_image, height, width, scales[index]),
                             range(count))

    def _decode(self, index: int, outputs: list[np.ndarray], height: int, width: int, scale: float) -> list[Face]:
        levels = len(STRIDES)
        scores, boxes, kpss = [], [], []
        for level, stride in enumerate(STRIDES):
            centers = self._anchor_centers(height // stride, width // stride, stride)
            level_scores = outputs[level][index][:, 0]
            keep = np.flatnonzero(level_scores >= self.threshold)
            if keep.size == 0:
                continue
            scores.append(level_scores[keep])
            boxes.append(distance2bbox(centers[keep], outputs[levels + level][index][keep] * stride))
            kpss.append(distance2kps(centers[keep], outputs[2 * levels + level][index][keep] * stride).reshape(-1, 5, 2))
        if not scores:
            return []
        return non_max_suppression(
            np.concatenate(scores), np.concatenate(boxes) / scale, np.concatenate(kpss) / scale, self.threshold, self.nms_iou
        )
