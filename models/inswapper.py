"""InSwapper (inswapper_128), batched: every face of every frame in one ONNX call.

Each face is paired with its own client's latent (ArcFace embedding x emap, normalized,
computed once per source). Paste-back reproduces insightface's `INSwapper.get(...,
paste_back=True)` blend (eroded, blurred warp of a white square) but inside each face's
ROI: the reference warps three full frames per face.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from insightface.utils import face_align

from .blend import Patch, Roi
from .face import Face
from .host import HostPool

INPUT_SIZE = 128


def load_emap(path: Path) -> np.ndarray:
    """The embedding map inswapper expects its latents in: the graph's last initializer."""
    model = onnx.load(str(path))
    return onnx.numpy_helper.to_array(model.graph.initializer[-1])


@dataclass(frozen=True)
class SwapJob:
    """One face to swap: which frame, where, and with whose latent."""

    frame_index: int
    face: Face
    latent: np.ndarray  # (512,)


class InSwapper:
    def __init__(self, session: ort.InferenceSession, emap: np.ndarray, host: HostPool | None = None) -> None:
        self.session = session
        self.emap = emap
        self.host = host or HostPool()
        self._target_name, self._source_name = (i.name for i in session.get_inputs())

    def latent(self, embedding: np.ndarray) -> np.ndarray:
        latent = (embedding / np.linalg.norm(embedding)).reshape(1, -1) @ self.emap
        return (latent / np.linalg.norm(latent)).reshape(-1).astype(np.float32)

    def generate(self, frames: Sequence[np.ndarray], jobs: Sequence[SwapJob]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Swapped 128x128 BGR crops for all jobs (one call) and each crop's alignment matrix."""
        aligned = self.host.map("swap_pre", lambda job: face_align.norm_crop2(frames[job.frame_index], job.face.kps,
                                                                               INPUT_SIZE), jobs)
        crops, matrices = [crop for crop, _ in aligned], [matrix for _, matrix in aligned]
        with self.host.stage("swap_pre"):
            blob = cv2.dnn.blobFromImages(crops, 1.0 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0.0, 0.0, 0.0), swapRB=True)
            latents = np.stack([job.latent for job in jobs]).astype(np.float32)
        predicted = self.session.run(None, {self._target_name: blob, self._source_name: latents})[0]
        with self.host.stage("swap_post"):
            fakes = np.clip(255 * predicted.transpose(0, 2, 3, 1), 0, 255).astype(np.uint8)[..., ::-1]
        return fakes, matrices


def patch(frame_shape: tuple[int, ...], face: Face, matrix: np.ndarray, fake: np.ndarray) -> Patch:
    """`fake` (the swapped crop of `face`) ready to blend into its frame."""
    roi, warped, alpha = paste_region(frame_shape, matrix, fake)
    landmarks = None if face.landmarks is None else face.landmarks - roi.origin
    return Patch(roi, warped, alpha, landmarks=landmarks)


def paste_region(frame_shape: tuple[int, ...], matrix: np.ndarray, fake: np.ndarray) -> tuple[Roi, np.ndarray, np.ndarray]:
    """The swapped crop warped back into its ROI, and the reference blend mask there (0..1)."""
    side = INPUT_SIZE
    extent = side * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))) ** -1)  # the crop's side in frame pixels
    pad = int(extent * np.sqrt(2) / 10) + 12  # >= the blur radius below: the mask fades out inside the ROI
    roi, to_roi = Roi.of_crop(matrix, side, pad, frame_shape[0], frame_shape[1])
    size = roi.size
    warped = cv2.warpAffine(fake, to_roi, size, borderValue=0.0)
    white = cv2.warpAffine(np.full((side, side), 255, np.float32), to_roi, size, borderValue=0.0)
    white[white > 20] = 255
    rows, cols = np.where(white == 255)
    if rows.size == 0:
        return roi, warped, np.zeros(white.shape, np.float32)
    mask_size = int(np.sqrt((rows.max() - rows.min()) * (cols.max() - cols.min())))
    erode = max(mask_size // 10, 10)
    white = cv2.erode(white, np.ones((erode, erode), np.uint8), iterations=1)
    blur = 2 * max(mask_size // 20, 5) + 1
    return roi, warped, cv2.GaussianBlur(white, (blur, blur), 0) / 255.0
