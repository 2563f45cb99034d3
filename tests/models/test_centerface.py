"""CenterFace on real photos: every face found, SCRFD's geometry and keypoint order, batch = one by one."""
from __future__ import annotations

import numpy as np
import pytest

from models.centerface import CenterFaceDetector
from models.face import Face
from models.registry import MODELS, require
from models.scrfd import ScrfdDetector
from models.sessions import SessionCache, SessionOptions
from tests import media


@pytest.fixture(scope="module")
def sessions() -> SessionCache:
    return SessionCache()


@pytest.fixture(scope="module")
def centerface(sessions: SessionCache) -> CenterFaceDetector:
    return CenterFaceDetector(sessions.get(require("centerface"), SessionOptions(), MODELS["centerface"].batch_axes))


@pytest.fixture(scope="module")
def scrfd(sessions: SessionCache) -> ScrfdDetector:
    return ScrfdDetector(sessions.get(require("scrfd_500m"), SessionOptions(), MODELS["scrfd_500m"].batch_axes))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def best_match(face: Face, others: list[Face]) -> tuple[Face, float]:
    match = max(others, key=lambda other: iou(face.box, other.box))
    return match, iou(face.box, match.box)


def test_finds_the_six_faces_with_keypoints_inside(centerface: CenterFaceDetector) -> None:
    faces = centerface.detect([media.group_photo()])[0]
    assert len(faces) == 6
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for face in faces:
        assert face.box.shape == (4,) and face.kps.shape == (5, 2)
        x1, y1, x2, y2 = face.box
        assert np.all((face.kps >= [x1, y1]) & (face.kps <= [x2, y2]))


def test_matches_scrfd_boxes_and_keypoint_order(centerface: CenterFaceDetector, scrfd: ScrfdDetector) -> None:
    image = media.group_photo()
    ours, reference = centerface.detect([image])[0], scrfd.detect([image])[0]
    assert len(reference) == 6
    for face in ours:
        match, overlap = best_match(face, reference)
        assert overlap > 0.5
        # Same point order as SCRFD: each keypoint lies near SCRFD's keypoint of the same index.
        width = match.box[2] - match.box[0]
        assert np.linalg.norm(face.kps - match.kps, axis=1).max() < 0.15 * width


def test_batch_equals_one_by_one(centerface: CenterFaceDetector) -> None:
    photo = media.group_photo()
    frames = [photo, np.ascontiguousarray(photo[:, ::-1]), np.ascontiguousarray(photo[60:300, 0:400])]
    batched = centerface.detect(frames)
    assert len(batched) == 3
    for frame, faces in zip(frames, batched):
        alone = centerface.detect([frame])[0]
        assert len(faces) == len(alone) > 0
        for face in faces:
            match, overlap = best_match(face, alone)
            assert overlap > 0.95
            assert abs(face.score - match.score) < 0.02
            np.testing.assert_allclose(face.kps, match.kps, atol=1.5)
    assert centerface.detect([]) == []
