"""Five-point face alignment: the templates face models were trained on, and the warp onto them.

A swapper, an enhancer or a mask sees a face as its training data did: cropped by the
similarity transform that carries the face's five keypoints (eyes, nose tip, mouth corners)
onto the model's template scaled to its input size. Models differ only in the template and
the size, so they name both and share this warp; what a model returns goes back through the
inverse of the same matrix (models/paste_back.py).
"""
from __future__ import annotations

import cv2
import numpy as np
from insightface.utils.face_align import arcface_dst

# Normalised (x, y) of left eye, right eye, nose tip, left and right mouth corner: multiply by the crop size.
TEMPLATES: dict[str, np.ndarray] = {
    "arcface_112_v1": np.array([[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.5, 0.61154464],
                                [0.37913393, 0.776875], [0.62086607, 0.776875]], np.float32),
    "arcface_112_v2": (arcface_dst / 112).astype(np.float32),
    "arcface_128": ((arcface_dst + [8.0, 0.0]) / 128).astype(np.float32),  # inswapper's crop
    "ffhq_512": np.array([[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
                          [0.39308822, 0.725411], [0.61150205, 0.72490465]], np.float32),
    "mtcnn_512": np.array([[0.36562865, 0.46733799], [0.63305391, 0.46585885], [0.50019127, 0.61942959],
                           [0.39032951, 0.77598822], [0.61178945, 0.77476328]], np.float32),
}


def alignment_matrix(kps: np.ndarray, template: str, size: int) -> np.ndarray:
    """The 2x3 similarity transform from frame pixels onto `template` at `size` pixels.

    RANSAC with a 100 px threshold keeps every point for real faces and only drops a
    keypoint that is wildly off (a detector's glitch), as the tools these models come from do."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(kps, np.float32), TEMPLATES[template] * size,
                                            method=cv2.RANSAC, ransacReprojThreshold=100)
    if matrix is None:
        raise ValueError("the face's keypoints do not determine an alignment (all in one point?)")
    return matrix


def align(frame: np.ndarray, kps: np.ndarray, template: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The face cropped onto `template` at `size` x `size` pixels, and the matrix that cropped it."""
    matrix = alignment_matrix(kps, template, size)
    return crop_with(frame, matrix, size), matrix


def crop_with(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The `size` x `size` crop a frame -> crop `matrix` cuts, warped as the models' training crops were."""
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def rescaled(matrix: np.ndarray, crop_size: int, size: int) -> np.ndarray:
    """The matrix cutting the same crop as `matrix` (a `crop_size` crop) at `size` pixels: a
    model of another input size (a mask) sees exactly the face the swapper saw."""
    return matrix * (size / crop_size)
