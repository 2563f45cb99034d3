"""ArcFace recognizer: 512-d identity embeddings, batched over faces.

Used when a client's source face or face map arrives (inswapper takes the embedding as its
latent) and, for clients with a face map, once per face track to tell who it is: never
once per frame.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort
from insightface.utils import face_align

from .face import Face
from .host import HostPool

INPUT_SIZE = 112


class ArcFace:
    def __init__(self, session: ort.InferenceSession, host: HostPool | None = None) -> None:
        self.session = session
        self.host = host or HostPool()
        self._input_name = session.get_inputs()[0].name

    def raw_embeddings(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Aligned 112x112 BGR crops -> (N, 512) embeddings as the model gives them, before
        normalising: the scale some swappers' converters were trained on."""
        blob = cv2.dnn.blobFromImages(list(crops), 1.0 / 127.5, (INPUT_SIZE, INPUT_SIZE), (127.5, 127.5, 127.5), swapRB=True)
        return self.session.run(None, {self._input_name: blob})[0]

    def annotate(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> None:
        """Set `embedding` (L2-normalised) and `raw_embedding` on every face, one ONNX call for all."""
        pairs = [(image, face) for image, image_faces in zip(images, faces) for face in image_faces]
        if not pairs:
            return
        crops = self.host.map("identify_pre", lambda pair: face_align.norm_crop(pair[0], pair[1].kps, INPUT_SIZE), pairs)
        raw = self.raw_embeddings(crops)
        for (_, face), as_given, normalised in zip(pairs, raw, raw / np.linalg.norm(raw, axis=1, keepdims=True)):
            face.raw_embedding, face.embedding = as_given, normalised


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
