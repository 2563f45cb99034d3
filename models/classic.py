"""The classic swapper: no swapper weights, only landmarks. The embedded default.

The source face is warped onto each target face piecewise-affinely over a Delaunay mesh of
the 106 landmarks (a global similarity covers pixels outside the mesh), recoloured to the
target's skin tone in LAB, and blended through a feathered hull mask. All of it happens in
each face's ROI: a remap of ~100x120 pixels, not of the frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np
from scipy.spatial import Delaunay

from .blend import Roi, composite, feather, hull_mask, lab_stats
from .analysis import SourcePhoto
from .face import Face

SOURCE_PAD = 0.5  # the source crop keeps half a face of context around the landmarks
ROI_MARGIN = 0.08
# How much of the target's face shape the warp follows (1: all of it, 0: none). Shape is
# much of what identity is: measured on t1.jpg with Tom Hanks (perf/quality_bench.py),
# 1.0 left 1 face of 6 closer to the source than to its original by ArcFace, 0.3 left 5.
WARP_DETAIL = 0.3


@dataclass(frozen=True)
class ClassicSource:
    image: np.ndarray  # BGR crop around the source face
    usable: np.ndarray  # uint8 mask of `image`: the face's hull, where the photo has real pixels
    landmarks: np.ndarray  # (106, 2) in `image` coordinates
    triangles: np.ndarray  # (T, 3) landmark indices of the Delaunay mesh
    color: tuple[np.ndarray, np.ndarray]  # LAB mean/std inside `usable`


def prepare_source(photo: SourcePhoto) -> ClassicSource:
    face = photo.face
    assert face.landmarks is not None
    roi = Roi.around(face.landmarks, SOURCE_PAD, photo.image.shape[0], photo.image.shape[1])
    crop = np.ascontiguousarray(roi.of(photo.image))
    points = (face.landmarks - roi.origin).astype(np.float32)
    usable = cv2.bitwise_and(hull_mask(points, crop.shape[:2]), np.ascontiguousarray(roi.of(photo.valid)))
    return ClassicSource(
        image=crop,
        usable=usable,
        landmarks=points,
        triangles=Delaunay(points).simplices.astype(np.int32),
        color=lab_stats(crop, usable),
    )


def _warp_maps(target: np.ndarray, source: ClassicSource, shape: tuple[int, int],
               detail: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel source coordinates for an ROI whose landmarks are `target` (ROI coordinates).

    `detail` 1 follows the target's landmarks exactly (its expression, but also its face
    shape); 0 keeps the source's own shape, only aligned (a similarity over all points).
    """
    tri_target = target[source.triangles]  # (T, 3, 2)
    tri_source = source.landmarks[source.triangles]
    homogeneous = np.concatenate([tri_target, np.ones((*tri_target.shape[:2], 1), np.float32)], axis=2)
    usable = np.abs(np.linalg.det(homogeneous)) > 1e-3  # skip degenerate (flat) triangles
    affines = np.zeros((len(tri_target) + 1, 2, 3), np.float32)
    affines[:-1][usable] = np.transpose(np.linalg.solve(homogeneous[usable], tri_source[usable]), (0, 2, 1))
    similarity, _ = cv2.estimateAffinePartial2D(target, source.landmarks)
    affines[-1] = similarity if similarity is not None else np.eye(2, 3)
    index = np.full(shape, len(tri_target), np.int32)  # default: the global similarity
    for k in np.flatnonzero(usable):
        cv2.fillConvexPoly(index, np.round(tri_target[k]).astype(np.int32), int(k))
    ys, xs = np.indices(shape, dtype=np.float32)
    affines[:-1] = detail * affines[:-1] + (1 - detail) * affines[-1]
    chosen = affines[index]  # (H, W, 2, 3)
    map_x = chosen[..., 0, 0] * xs + chosen[..., 0, 1] * ys + chosen[..., 0, 2]
    map_y = chosen[..., 1, 0] * xs + chosen[..., 1, 1] * ys + chosen[..., 1, 2]
    return map_x, map_y


def swap_face(frame: np.ndarray, face: Face, source: ClassicSource, options: Mapping[str, object]) -> None:
    """Paint `source` over `face` in `frame`, in place, inside the face's ROI only."""
    assert face.landmarks is not None
    roi = Roi.around(face.landmarks, ROI_MARGIN, frame.shape[0], frame.shape[1])
    if roi.empty:
        return
    target = (face.landmarks - roi.origin).astype(np.float32)
    map_x, map_y = _warp_maps(target, source, roi.shape, WARP_DETAIL)
    warped = cv2.remap(source.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Paint only where both faces are: the target's hull and the source's real face pixels.
    usable = cv2.remap(source.usable, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.bitwise_and(hull_mask(target, roi.shape), usable)
    alpha = feather(mask, float(max(np.ptp(target, axis=0))))
    composite(frame, roi, warped, alpha, options, landmarks=target, face_colors=source.color)
