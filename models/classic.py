"""The classic swapper: no swapper weights, only landmarks. The embedded default.

The source face is warped onto each target face piecewise-affinely over a Delaunay mesh of
the 106 landmarks (a global similarity covers pixels outside the mesh), recoloured to the
target's skin tone in LAB, and blended through a feathered hull mask. Without a landmark
model (the MIT-only pipeline) it aligns the two faces by their 5 keypoints with a
similarity and blends through a face-shaped ellipse. All of it happens in each face's
ROI: a remap of ~100x120 pixels, not of the frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np
from scipy.spatial import Delaunay

from .blend import Patch, Roi, face_mask, feather, lab_stats, paste
from .analysis import SourcePhoto
from .face import Face

SOURCE_PAD = 0.5  # the source crop keeps half a face of context around the landmarks
ROI_MARGIN = 0.08
KEYPOINT_MARGIN = 1.0  # 5 keypoints span only the middle of a face: the ROI reaches further
# How much of the target's landmark geometry the warp follows (1: all of it, 0: none, the
# source's still face only aligned). Live, some must come through: a mouth that opens, eyes
# that close. Shape carries identity too: perf/quality_bench.py sweeps it (Tom Hanks onto
# t1.jpg, faces closer to the source by ArcFace: 5 of 6 at 0, 4 at 0.3, 4 at 0.6, 2 at 1.0).
WARP_DETAIL = 0.3


@dataclass(frozen=True)
class WarpSource:
    """A source photo made ready for the warp: what every frame's swap reads, computed once."""

    image: np.ndarray  # BGR crop around the source face
    usable: np.ndarray  # uint8 mask of `image`: the face's hull, where the photo has real pixels
    landmarks: np.ndarray  # (106, 2), or the (5, 2) keypoints without a landmark model; `image` coordinates
    triangles: np.ndarray | None  # (T, 3) landmark indices of the Delaunay mesh (None: 5 keypoints only)
    color: tuple[np.ndarray, np.ndarray]  # LAB mean/std inside `usable`


def _outline(face: Face) -> tuple[np.ndarray, float]:
    """The points that describe a face's shape, and how far around them its ROI reaches."""
    if face.landmarks is not None:
        return face.landmarks, ROI_MARGIN
    return face.kps, KEYPOINT_MARGIN


def prepare_source(photo: SourcePhoto) -> WarpSource:
    points, margin = _outline(photo.face)
    roi = Roi.around(points, max(margin, SOURCE_PAD), photo.image.shape[0], photo.image.shape[1])
    crop = np.ascontiguousarray(roi.of(photo.image))
    points = (points - roi.origin).astype(np.float32)
    usable = cv2.bitwise_and(face_mask(points, crop.shape[:2]), np.ascontiguousarray(roi.of(photo.valid)))
    return WarpSource(
        image=crop,
        usable=usable,
        landmarks=points,
        triangles=Delaunay(points).simplices.astype(np.int32) if len(points) > 5 else None,
        color=lab_stats(crop, usable),
    )


def _warp_maps(target: np.ndarray, source: WarpSource, shape: tuple[int, int],
               detail: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel source coordinates for an ROI whose landmarks are `target` (ROI coordinates).

    `detail` 1 follows the target's landmarks exactly (its expression, but also its face
    shape); 0 keeps the source's own shape, only aligned (a similarity over all points).
    """
    similarity, _ = cv2.estimateAffinePartial2D(target, source.landmarks)
    similarity = similarity if similarity is not None else np.eye(2, 3)
    if source.triangles is None:
        return _affine_maps(np.broadcast_to(similarity.astype(np.float32), (*shape, 2, 3)), shape)
    tri_target = target[source.triangles]  # (T, 3, 2)
    tri_source = source.landmarks[source.triangles]
    homogeneous = np.concatenate([tri_target, np.ones((*tri_target.shape[:2], 1), np.float32)], axis=2)
    usable = np.abs(np.linalg.det(homogeneous)) > 1e-3  # skip degenerate (flat) triangles
    affines = np.zeros((len(tri_target) + 1, 2, 3), np.float32)
    affines[:-1][usable] = np.transpose(np.linalg.solve(homogeneous[usable], tri_source[usable]), (0, 2, 1))
    affines[-1] = similarity
    index = np.full(shape, len(tri_target), np.int32)  # default: the global similarity
    for k in np.flatnonzero(usable):
        cv2.fillConvexPoly(index, np.round(tri_target[k]).astype(np.int32), int(k))
    affines[:-1] = detail * affines[:-1] + (1 - detail) * affines[-1]
    return _affine_maps(affines[index], shape)


def _affine_maps(per_pixel: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every ROI pixel from its (2, 3) affine: (H, W, 2, 3) -> two maps."""
    ys, xs = np.indices(shape, dtype=np.float32)
    map_x = per_pixel[..., 0, 0] * xs + per_pixel[..., 0, 1] * ys + per_pixel[..., 0, 2]
    map_y = per_pixel[..., 1, 0] * xs + per_pixel[..., 1, 1] * ys + per_pixel[..., 1, 2]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def swap_face(frame: np.ndarray, face: Face, source: WarpSource, options: Mapping[str, object],
              detail: float = WARP_DETAIL) -> None:
    """Paint `source` over `face` in `frame`, in place, inside the face's ROI only."""
    patch = render(frame.shape, face, source, detail)
    if patch is not None:
        paste(frame, [patch], options)


def render(frame_shape: tuple[int, ...], face: Face, source: WarpSource, detail: float = WARP_DETAIL) -> Patch | None:
    """`source` warped onto `face`, with its mask: the costly part of a swap, independent of the
    frame's pixels (None: the face lies outside the frame)."""
    points, margin = _outline(face)
    roi = Roi.around(points, margin, frame_shape[0], frame_shape[1])
    if roi.empty:
        return None
    target = (points - roi.origin).astype(np.float32)
    map_x, map_y = _warp_maps(target, source, roi.shape, detail)
    warped = cv2.remap(source.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Paint only where both faces are: the target's hull and the source's real face pixels.
    usable = cv2.remap(source.usable, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.bitwise_and(face_mask(target, roi.shape), usable)
    alpha = feather(mask, float(max(np.ptp(target, axis=0))))
    return Patch(roi, warped, alpha, landmarks=target if len(target) > 5 else None, face_colors=source.color)
