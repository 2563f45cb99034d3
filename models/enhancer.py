"""GFPGAN face restoration (ONNX, optional), batched over every face of the batch.

Faces are aligned to the FFHQ 512x512 template GFPGAN was trained on, restored in one
call, and pasted back through a feathered mask inside each face's ROI. It sharpens the
128x128 output of inswapper, at a high cost: use it on a GPU.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort

from .blend import Roi, blend_into
from .face import Face
from .host import HostPool

SIZE = 512
# FFHQ-aligned 5-point template (eyes, nose, mouth corners) as fractions of the crop.
FFHQ_TEMPLATE = np.array(
    [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
     [0.39308822, 0.72541100], [0.61150205, 0.72490465]], np.float32) * SIZE


def _align(pair: tuple[np.ndarray, Face]) -> tuple[np.ndarray, np.ndarray]:
    """The FFHQ-aligned crop of one face, and the frame -> crop affine."""
    frame, face = pair
    matrix = cv2.estimateAffinePartial2D(face.kps, FFHQ_TEMPLATE, method=cv2.LMEDS)[0]
    return matrix, cv2.warpAffine(frame, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)


def _crop_mask() -> np.ndarray:
    """A soft-edged square in crop space: restored pixels fade out toward the crop border."""
    mask = np.zeros((SIZE, SIZE), np.float32)
    border = SIZE // 10
    mask[border:-border, border:-border] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), SIZE / 25)


class Enhancer:
    def __init__(self, session: ort.InferenceSession, host: HostPool | None = None) -> None:
        self.session = session
        self.host = host or HostPool()
        self._input_name = session.get_inputs()[0].name
        self._mask = _crop_mask()

    def enhance(self, frames: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> None:
        """Restore every face in place; `faces[i]` belong to `frames[i]`."""
        pairs = [(frame, face) for frame, frame_faces in zip(frames, faces) for face in frame_faces]
        if not pairs:
            return
        aligned = self.host.map("enhance_pre", _align, pairs)
        matrices, crops = [matrix for matrix, _ in aligned], [crop for _, crop in aligned]
        with self.host.stage("enhance_pre"):
            blob = cv2.dnn.blobFromImages(crops, 1.0 / 127.5, (SIZE, SIZE), (127.5, 127.5, 127.5), swapRB=True)
        restored = self.session.run(None, {self._input_name: blob})[0]
        with self.host.stage("enhance_post"):
            restored = np.clip((restored.transpose(0, 2, 3, 1) + 1) * 127.5, 0, 255).astype(np.uint8)[..., ::-1]
        by_frame: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for (frame, _), matrix, face_crop in zip(pairs, matrices, restored):
            by_frame.setdefault(id(frame), []).append((frame, matrix, face_crop))
        self.host.map("enhance_paste", self._paste_frame, list(by_frame.values()))

    def _paste_frame(self, restored: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """One frame's restored faces, in order (their ROIs may overlap)."""
        for frame, matrix, face_crop in restored:
            roi, to_roi = Roi.of_crop(matrix, SIZE, 0, frame.shape[0], frame.shape[1])
            if roi.empty:
                continue
            warped = cv2.warpAffine(np.ascontiguousarray(face_crop), to_roi, roi.size, borderMode=cv2.BORDER_REPLICATE)
            alpha = cv2.warpAffine(self._mask, to_roi, roi.size, borderValue=0.0)
            blend_into(frame, roi, warped, alpha)
