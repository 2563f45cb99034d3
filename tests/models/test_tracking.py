"""Face tracks: per-client isolation, held faces, smoothing that measurably helps (thresholds)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from models.frame import FrameContext
from models.tracking import FaceTracker, OneEuroFilter
from perf import quality as q
from tests import media


@pytest.fixture(scope="module")
def analyser():
    from models.hub import ModelHub, ModelSettings

    return ModelHub(ModelSettings()).analyser


@pytest.fixture(scope="module")
def base_faces(analyser):
    return q.reference_faces(analyser, media.group_photo())


def test_one_euro_filter_is_calm_at_rest_and_quick_in_motion():
    rng = np.random.default_rng(0)
    calm, moving = OneEuroFilter(), OneEuroFilter()
    noise = rng.normal(0, 0.3, (120, 5, 2))
    still = np.array([calm(x, i / 30) for i, x in enumerate(noise)])
    assert still[20:].std() < noise[20:].std() / 3
    ramp = np.arange(120)[:, None, None] * 2.0 + noise  # 2 px per frame
    followed = np.array([moving(x, i / 30) for i, x in enumerate(ramp)])
    assert abs((ramp - followed)[30:].mean()) < 1.0


def test_two_clients_tracks_never_mix_in_one_batch(analyser):
    group = media.group_photo()
    portrait = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (640, 480))
    alice, bob = FrameContext(client_id=1), FrameContext(client_id=2)
    for frame in range(4):
        faces_a, faces_b = analyser.analyse_tracked([group, portrait], [alice.frame(frame, frame / 30),
                                                                        bob.frame(frame, frame / 30)], True)
        assert len(faces_a) == 6 and len(faces_b) == 1
    assert len(alice.state["tracker"].tracks) == 6 and len(bob.state["tracker"].tracks) == 1
    portrait_box = analyser.detector.detect([portrait])[0][0].box
    assert np.abs(faces_b[0].box - portrait_box).max() < 3


def test_a_frame_is_analysed_once_whatever_its_processors_ask(analyser, monkeypatch):
    """An enhancer (no landmarks) before a swapper (landmarks) on each frame: one detection
    per frame, landmarks added to the same faces, and the tracks moved once per frame."""
    detector, calls = analyser.detector, []

    class Counting:
        def detect(self, images):
            calls.extend([len(images)] if images else [])
            return detector.detect(images)

    monkeypatch.setattr(analyser, "detector", Counting())
    clip, client = q.pan(media.group_photo(), frames=6), FrameContext()
    for index, frame in enumerate(clip.frames):
        this = client.frame(index, index / clip.fps)
        first = analyser.analyse_tracked([frame], [this], False)[0]
        second = analyser.analyse_tracked([frame], [this], True)[0]
        assert [id(f) for f in first] == [id(f) for f in second] and len(second) == 6
        assert all(f.landmarks is not None for f in second)
    assert calls == [1] * len(clip.frames)
    speeds = [track.filters["kps"].velocity for track in client.state["tracker"].tracks]
    assert all(np.abs(speed[..., 0]).mean() > 0.5 for speed in speeds), "the filters follow the 2 px/frame pan"


def test_a_face_the_detector_misses_for_one_frame_is_still_swapped(analyser, base_faces):
    clip = q.wander(media.group_photo(), frames=45)  # a full turn in 1.5 s: brisk head motion
    lost = {8: 0, 9: 3, 14: 5, 30: 1, 31: 1}  # frame -> index of a face the detector "misses" there
    real = analyser.detector

    def flaky_detector(image, frames=iter(range(10**6))):
        faces = real.detect([image])[0]
        frame = next(frames)
        return [f for i, f in enumerate(faces) if lost.get(frame) != i]

    detected = [analyser.detector.detect([frame])[0] for frame in clip.frames]
    missing = [[f for i, f in enumerate(faces) if lost.get(t) != i] for t, faces in enumerate(detected)]
    swapped = q.track_clip(analyser, clip, smoothing=1.0, detect=flaky_detector)
    dropped, chances = q.dropouts(clip, base_faces, missing, swapped)
    assert chances > 0 and dropped == 0
    assert all(len(faces) == 6 for faces in swapped)


def test_a_track_ends_after_it_is_missing_for_longer_than_the_hold():
    tracker = FaceTracker(hold_frames=2)
    from models.face import Face

    face = Face(box=np.array([10, 10, 60, 60], np.float32), score=0.9, kps=np.zeros((5, 2), np.float32))
    tracker.update([face], 0.0)
    assert [len(tracker.update([], t / 30)) for t in range(1, 5)] == [1, 1, 0, 0]


def test_smoothing_reduces_jitter_threefold_with_little_lag(analyser, base_faces):
    still = q.still_with_drift(media.group_photo(), frames=60)
    raw = q.frame_to_frame_px(q.keypoint_errors(still, base_faces, q.track_clip(analyser, still, 0)))
    smooth = q.frame_to_frame_px(q.keypoint_errors(still, base_faces, q.track_clip(analyser, still, 1)))
    assert smooth * 3 <= raw, (raw, smooth)
    pan = q.pan(media.group_photo(), frames=50)
    lag = q.lag_px(q.keypoint_errors(pan, base_faces, q.track_clip(analyser, pan, 1)), np.array([1.0, 0.0]))
    assert lag < 1.0, lag


def test_detect_every_follows_faces_by_their_landmarks(analyser, base_faces):
    pan = q.pan(media.group_photo(), frames=24)
    analyser.detect_every = 3
    try:
        followed = q.track_clip(analyser, pan, smoothing=0)
    finally:
        analyser.detect_every = 1
    errors = q.keypoint_errors(pan, base_faces, followed)
    eye = np.mean([np.linalg.norm(f.kps[0] - f.kps[1]) for f in base_faces])
    assert np.isnan(errors).mean() < 0.05
    assert np.nanmax(np.abs(errors)) < 0.25 * eye, "followed keypoints stay on the face"
