"""The embedded real models on real photos: detection, landmarks, recognition."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.analysis import NoFaceError
from models.recognizer import cosine
from models.registry import MODELS, ModelError, locate, require, verify
from tests import media


def inside(points: np.ndarray, box: np.ndarray, slack: float = 0.0) -> bool:
    size = box[2:] - box[:2]
    return bool(np.all(points >= box[:2] - slack * size) and np.all(points <= box[2:] + slack * size))


def test_embedded_models_are_found_and_verified():
    for name in ("scrfd_500m", "w600k_mbf", "2d106det", "centerface"):
        path = require(name)
        assert path.is_file() and MODELS[name].embedded


def test_a_corrupt_model_file_is_refused(tmp_path):
    fake = tmp_path / "scrfd_500m_bnkps.onnx"
    fake.write_bytes(b"not the model")
    assert locate(MODELS["scrfd_500m"], tmp_path) == fake  # a models directory wins over the embedded copy
    with pytest.raises(ModelError, match="sha256"):
        verify(MODELS["scrfd_500m"], fake)


def test_missing_model_explains_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError, match="python -m models fetch inswapper_128"):
        require("inswapper_128", tmp_path)


def test_detector_finds_the_six_faces_of_the_group_photo(hub):
    frame = media.group_photo()
    faces = hub.analyser.analyse([frame], [True], with_landmarks=True)[0]
    assert len(faces) == 6
    for face in faces:
        assert face.score > 0.5
        assert inside(face.kps, face.box)
        assert face.landmarks is not None and face.landmarks.shape == (106, 2)
        assert inside(face.landmarks, face.box, slack=0.25)
    boxes = np.array([f.box for f in faces])
    assert len({tuple(np.round(b[:2] / 20)) for b in boxes}) == 6, "six distinct faces"


def test_one_batched_call_equals_frame_by_frame(hub):
    frames = [media.group_photo(), cv2.flip(media.group_photo(), 1), media.group_photo(320, 240)]
    batched = hub.analyser.detector.detect(frames)
    for frame, faces in zip(frames, batched):
        alone = hub.analyser.detector.detect([frame])[0]
        assert len(alone) == len(faces)
        np.testing.assert_allclose([f.box for f in alone], [f.box for f in faces], atol=0.5)


def test_only_the_largest_face_when_many_faces_is_off(hub):
    frame = media.group_photo()
    all_faces = hub.analyser.analyse([frame], [True], False)[0]
    one = hub.analyser.analyse([frame], [False], False)[0]
    assert len(one) == 1 and one[0].area == max(f.area for f in all_faces)


def test_recognizer_tells_people_apart(hub):
    frame = media.group_photo()
    mirrored = cv2.flip(frame, 1)
    analyser = hub.analyser
    faces, mirrored_faces = analyser.analyse([frame, mirrored], [True, True], False)
    analyser.recognizer.annotate([frame, mirrored], [faces, mirrored_faces])
    for face in faces:
        same = max(cosine(face.embedding, other.embedding) for other in mirrored_faces)
        others = max(cosine(face.embedding, other.embedding) for other in faces if other is not face)
        assert same > 0.8 and others < 0.4 and same - others > 0.5


def test_tight_source_crop_is_found(hub):
    """Tom_Hanks_54745.png is a 112x112 aligned face that fills the whole image."""
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    assert tom.shape[:2] == (112, 112)
    photo = hub.analyser.source_face(tom)
    assert photo.face.embedding is not None and photo.note == ""


def test_a_photo_without_a_face_is_refused(hub):
    wall = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="No face"):
        hub.analyser.source_face(wall)
