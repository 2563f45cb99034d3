"""Blending helpers shared by the swappers: every function works on one face's ROI only.

Working on the ROI (a face is ~2-10% of a webcam frame) instead of full-frame warps is
what keeps paste-back cheap enough for many faces per batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

MOUTH = slice(52, 72)  # 2d106det: points 52..71 outline the lips


@dataclass(frozen=True)
class Roi:
    """A rectangle of the frame: [y0:y1, x0:x1]."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, points: np.ndarray, margin: float, height: int, width: int) -> "Roi":
        low, high = points.min(axis=0), points.max(axis=0)
        pad = margin * float(max(high - low))
        x0, y0 = np.floor(low - pad).astype(int)
        x1, y1 = np.ceil(high + pad).astype(int) + 1
        return cls(max(0, x0), max(0, y0), min(width, x1), min(height, y1))

    @classmethod
    def of_crop(cls, matrix: np.ndarray, side: int, pad: int, height: int, width: int) -> tuple["Roi", np.ndarray]:
        """Where an aligned `side`x`side` crop (frame -> crop `matrix`) lies in the frame, grown by
        `pad`; and the affine taking the crop into that ROI (for warping the crop back)."""
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], np.float32) @ inverse[:, :2].T + inverse[:, 2]
        low, high = np.floor(corners.min(axis=0)).astype(int) - pad, np.ceil(corners.max(axis=0)).astype(int) + 1 + pad
        roi = cls(max(0, low[0]), max(0, low[1]), min(width, high[0]), min(height, high[1]))
        to_roi = inverse.copy()
        to_roi[:, 2] -= roi.origin
        return roi, to_roi

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as OpenCV's warps take it."""
        return self.x1 - self.x0, self.y1 - self.y0

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.x0, self.y0], np.float32)

    def of(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0:self.y1, self.x0:self.x1]


def feather(mask: np.ndarray, face_size: float) -> np.ndarray:
    """Soft edge proportional to the face, so small and large faces blend alike; float 0..1.

    Narrow on purpose: every pixel of the face the edge gives back to the target takes
    identity with it (measured with perf/quality_bench.py: a face/20 erosion and face/10
    blur left 3 of 6 swapped faces closer to the source by ArcFace, face/40 and face/14 4).
    """
    erode = max(1, int(face_size / 40))
    blur = max(1, int(face_size / 14)) | 1
    mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 255)
    return mask


def keypoint_face_mask(kps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A face-shaped ellipse from the 5 keypoints alone, for when no landmark model is used
    (the MIT-only pipeline): centred between eyes and mouth, turned with the eye line."""
    eyes, mouth = kps[:2].mean(axis=0), kps[3:].mean(axis=0)
    eye_distance = float(np.linalg.norm(kps[1] - kps[0]))
    eyes_to_mouth = float(np.linalg.norm(mouth - eyes))
    center = eyes + (mouth - eyes) * 0.35
    angle = float(np.degrees(np.arctan2(*(kps[1] - kps[0])[::-1])))
    mask = np.zeros(shape, np.uint8)
    axes = (max(1, int(eye_distance * 1.05)), max(1, int(eyes_to_mouth * 1.6)))
    cv2.ellipse(mask, (int(round(center[0])), int(round(center[1]))), axes, angle, 0, 360, 255, -1)
    return mask


def face_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The face's area from its 106 landmarks (their hull) or, failing those, its 5 keypoints."""
    return keypoint_face_mask(points, shape) if len(points) == 5 else hull_mask(points, shape)


def keep_mouth(mask: np.ndarray, landmarks: np.ndarray, size: float) -> np.ndarray:
    """Cut the target's mouth out of `mask` (float 0..1) so it shows through; `size` 0..1 grows the cut.

    The mouth mask is one more mask in the minimum that makes the paste's mask
    (models/masks.py): where the others already keep the swap out, it changes nothing."""
    lips = landmarks[MOUTH]
    center = lips.mean(axis=0)
    grown = center + (lips - center) * (1.0 + size)
    cut = hull_mask(grown, mask.shape[:2])
    span = float(np.ptp(lips[:, 0]))
    blur = max(3, int(span / 4)) | 1
    cut = cv2.GaussianBlur(cut.astype(np.float32) / 255.0, (blur, blur), 0)
    return np.minimum(mask, 1.0 - cut)


def lab_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = cv2.meanStdDev(cv2.cvtColor(image, cv2.COLOR_BGR2LAB), mask=mask)
    return mean.reshape(3), np.maximum(std.reshape(3), 1.0)


def transfer_color(source: np.ndarray, source_stats: tuple[np.ndarray, np.ndarray],
                   target_stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Reinhard colour transfer in LAB: give the warped source the target's skin tone and light.

    `(lab - src_mean) * scale + dst_mean` per channel is one affine map, applied by OpenCV on
    the 8-bit image (rounded and clipped there): a quarter of the float version's time,
    which matters at six faces a frame."""
    (src_mean, src_std), (dst_mean, dst_std) = source_stats, target_stats
    scale = dst_std / src_std
    affine = np.zeros((3, 4))
    affine[(0, 1, 2), (0, 1, 2)] = scale
    affine[:, 3] = dst_mean - scale * src_mean
    return cv2.cvtColor(cv2.transform(cv2.cvtColor(source, cv2.COLOR_BGR2LAB), affine), cv2.COLOR_LAB2BGR)


def blend_into(frame: np.ndarray, roi: Roi, face: np.ndarray, alpha: np.ndarray) -> None:
    """frame[roi] = alpha * face + (1 - alpha) * frame[roi], in place."""
    region = roi.of(frame)
    weight = alpha[..., None]
    region[:] = (face.astype(np.float32) * weight + region.astype(np.float32) * (1.0 - weight)).astype(np.uint8)


def sharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask, `amount` 0..5: restores the detail a 128x128 swap or a warp softens."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.5)
    return cv2.addWeighted(image, 1.0 + 0.4 * amount, blurred, -0.4 * amount, 0)


def poisson(face: np.ndarray, region: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """OpenCV's seamless clone of `face` into `region` through `inside`: gradients from the
    face, colours matched to the surroundings at the mask's edge (no visible seam)."""
    ys, xs = np.nonzero(inside)
    if ys.size == 0 or ys.min() == 0 or xs.min() == 0 or ys.max() >= inside.shape[0] - 1 or xs.max() >= inside.shape[1] - 1:
        return face  # the clone needs a border of unmasked pixels around the face
    center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    return cv2.seamlessClone(face, np.ascontiguousarray(region), inside, center, cv2.NORMAL_CLONE)


@dataclass(frozen=True)
class Patch:
    """A swapped face ready to blend into its frame: everything that does not depend on the
    frame's pixels, so the patches of many faces are made in parallel and then blended one
    after the other (faces close together share pixels)."""

    roi: Roi
    face: np.ndarray  # the swapped face warped into `roi`
    alpha: np.ndarray  # its blend mask there, 0..1
    landmarks: np.ndarray | None = None  # the target's 106 points in ROI coordinates (mouth mask)
    face_colors: tuple[np.ndarray, np.ndarray] | None = None  # the face's LAB statistics, when known


def paste(frame: np.ndarray, patches: Sequence[Patch], options: Mapping[str, Any]) -> None:
    """Blend one frame's patches into it, in order, per the client's options."""
    for patch in patches:
        composite(frame, patch.roi, patch.face, patch.alpha, options, patch.landmarks, patch.face_colors)


def composite(frame: np.ndarray, roi: Roi, face: np.ndarray, alpha: np.ndarray, options: Mapping[str, Any],
              landmarks: np.ndarray | None = None,
              face_colors: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """The last steps every swapper shares, per the client's options, in place.

    `face` is the swapped face warped into `roi`, `alpha` its blend mask there (0..1),
    `landmarks` the target's 106 points in ROI coordinates (for the mouth mask) and
    `face_colors` the face's LAB statistics when they are known in advance.
    """
    region = roi.of(frame)
    inside = (alpha > 0.5).astype(np.uint8) * 255
    if options.get("color_correction", True) and inside.any():
        face = transfer_color(face, face_colors or lab_stats(face, inside), lab_stats(region, inside))
    if options.get("sharpness", 0):
        face = sharpen(face, float(options["sharpness"]))
    if options.get("mouth_mask", 0) and landmarks is not None:
        alpha = keep_mouth(alpha, landmarks, float(options["mouth_mask"]) / 100)
    if options.get("blend") == "poisson":
        face = poisson(face, region, inside)
    blend_into(frame, roi, face, alpha * float(options.get("opacity", 1.0)))
