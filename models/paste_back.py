"""A swapped face crop back into its frame: warped by the inverse of its alignment, inside its ROI.

The blend mask is insightface's for inswapper (`INSwapper.get(paste_back=True)`: a white
square warped like the crop, eroded and blurred), computed in the face's ROI instead of the
whole frame, for a crop of any size: every swapper family pastes the same way.
"""
from __future__ import annotations

import cv2
import numpy as np

from .blend import Patch, Roi
from .face import Face


def patch(frame_shape: tuple[int, ...], face: Face, matrix: np.ndarray, fake: np.ndarray) -> Patch:
    """`fake` (the swapped crop of `face`) ready to blend into its frame."""
    roi, warped, alpha = paste_region(frame_shape, matrix, fake)
    landmarks = None if face.landmarks is None else face.landmarks - roi.origin
    return Patch(roi, warped, alpha, landmarks=landmarks)


def paste_region(frame_shape: tuple[int, ...], matrix: np.ndarray, fake: np.ndarray) -> tuple[Roi, np.ndarray, np.ndarray]:
    """The swapped crop warped back into its ROI, and the reference blend mask there (0..1)."""
    side = fake.shape[0]
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
