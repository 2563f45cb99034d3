"""A face crop back into its frame: warped by the inverse of its alignment, inside its ROI.

The crop goes back through its mask (models/masks.py: the minimum of the masks its client
chose, in crop space), warped into the ROI the same way as the crop, so the blend is
`frame * (1 - m) + crop * m` there (models/blend.py) and nothing outside the crop's
footprint is touched. Every swapper family, whatever its crop size, pastes the same way.
"""
from __future__ import annotations

import cv2
import numpy as np

from .blend import Patch, Roi
from .face import Face


def patch(frame_shape: tuple[int, ...], face: Face, matrix: np.ndarray, fake: np.ndarray, mask: np.ndarray) -> Patch:
    """`fake` (the swapped crop of `face`) and its crop-space `mask`, ready to blend into its frame."""
    roi, warped, alpha = paste_region(frame_shape, matrix, fake, mask)
    landmarks = None if face.landmarks is None else face.landmarks - roi.origin
    return Patch(roi, warped, alpha, landmarks=landmarks)


def paste_region(frame_shape: tuple[int, ...], matrix: np.ndarray, fake: np.ndarray,
                 mask: np.ndarray) -> tuple[Roi, np.ndarray, np.ndarray]:
    """The ROI of the crop's footprint in the frame, the crop warped into it, and the mask
    warped the same way (0..1; 0 outside the crop)."""
    side = fake.shape[0]
    roi, to_roi = Roi.of_crop(matrix, side, 1, frame_shape[0], frame_shape[1])
    size = roi.size
    warped = cv2.warpAffine(fake, to_roi, size, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, to_roi, size, borderValue=0.0)
    return roi, warped, np.clip(alpha, 0.0, 1.0)
