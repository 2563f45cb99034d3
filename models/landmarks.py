"""106-point landmarks (InsightFace 2d106det), batched over every face of every frame.

They give the face outline for masks and the dense correspondences of the classic
swapper's piecewise-affine warp. Crop geometry follows insightface's `Landmark.get`.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort
from insightface.utils import face_align

from .face import Face
from .host import HostPool

INPUT_SIZE = 192
CROP_MARGIN = 1.5  # the crop is 1.5x the box's longer side, as the model was trained


def _crop(pair: tuple[np.ndarray, Face]) -> tuple[np.ndarray, np.ndarray]:
    """The model's input around one face, and the affine back to the frame."""
    image, face = pair
    width, height = face.box[2:] - face.box[:2]
    center = (face.box[:2] + face.box[2:]) / 2
    scale = INPUT_SIZE / (max(width, height) * CROP_MARGIN)
    crop, matrix = face_align.transform(image, tuple(center), INPUT_SIZE, scale, 0)
    return crop, cv2.invertAffineTransform(matrix)


class Landmarks106:
    def __init__(self, session: ort.InferenceSession, host: HostPool | None = None) -> None:
        self.session = session
        self.host = host or HostPool()
        self._input_name = session.get_inputs()[0].name

    def annotate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> None:
        """Set `landmarks` on every face (faces[i] belong to images[i]) with one ONNX call."""
        pairs = [(image, face) for image, image_faces in zip(images, faces) for face in image_faces]
        if not pairs:
            return
        crops, inverses = zip(*self.host.map("landmarks_pre", _crop, pairs))
        with self.host.stage("landmarks_pre"):
            blob = cv2.dnn.blobFromImages(list(crops), 1.0, (INPUT_SIZE, INPUT_SIZE), (0, 0, 0), swapRB=True)
        points = self.session.run(None, {self._input_name: blob})[0].reshape(len(crops), -1, 2)
        with self.host.stage("landmarks_post"):
            points = (points + 1) * (INPUT_SIZE // 2)
            for (_, face), inverse, pts in zip(pairs, inverses, points):
                face.landmarks = (pts @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)
