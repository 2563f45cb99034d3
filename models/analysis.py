"""Face analysis shared by every processor of a server: detect, then landmarks / embeddings.

One instance per device holds the sessions; all of its methods take whole batches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np

from .face import Face
from .landmarks import Landmarks106
from .recognizer import ArcFace

SOURCE_PADDING = 0.5  # tight source crops (a face filling the photo) need context to be detected


class NoFaceError(Exception):
    """The source photo has no detectable face; the message is for the user."""


class Detector(Protocol):
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


@dataclass
class FaceAnalyser:
    detector: Detector
    landmarks: Landmarks106
    recognizer: ArcFace

    def analyse(self, images: Sequence[np.ndarray], many_faces: Sequence[bool], with_landmarks: bool) -> list[list[Face]]:
        """Faces of every image (only the largest where `many_faces` is off), one call per model."""
        faces = self.detector.detect(images)
        faces = [found if many or not found else [max(found, key=lambda f: f.area)] for found, many in zip(faces, many_faces)]
        if with_landmarks:
            self.landmarks.annotate(images, faces)
        return faces

    def source_face(self, image: np.ndarray) -> tuple[np.ndarray, Face, str]:
        """The face to wear: the largest in the photo, with landmarks and embedding.

        Returns the (padded) image the face's coordinates refer to, the face, and a note
        for the user when the choice was not obvious.
        """
        pad = int(SOURCE_PADDING * max(image.shape[:2]))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = self.detector.detect([padded])[0]
        if not faces:
            raise NoFaceError("No face detected in the source image; use a clear, front-facing photo")
        face = max(faces, key=lambda f: f.area)
        self.landmarks.annotate([padded], [[face]])
        self.recognizer.annotate([padded], [[face]])
        note = f"{len(faces)} faces found in the source image; using the largest" if len(faces) > 1 else ""
        return padded, face, note
