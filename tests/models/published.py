"""Published recipes the model tests hold the code to, written once here from the published facts
(FaceFusion's, as the project's docs give them), never from the code under test."""
from __future__ import annotations

import cv2
import numpy as np


def box_mask(size: int, blur: float = 0.3, padding: float = 0.0) -> np.ndarray:
    """FaceFusion's box mask of a `size` crop: 1 inside a border of max(b // 2, 1) pixels, or
    `padding` percent of the crop where larger, b = int(size * 0.5 * blur); blurred with sigma
    b / 4 (not at all when b is 0)."""
    amount = int(size * 0.5 * blur)
    border = max(amount // 2, 1, int(size * padding / 100))
    mask = np.ones((size, size), np.float32)
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    return cv2.GaussianBlur(mask, (0, 0), amount * 0.25) if amount > 0 else mask
