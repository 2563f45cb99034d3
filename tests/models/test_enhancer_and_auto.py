"""The optional enhancer on a graph with GFPGAN's signature, and how `auto` picks a swapper."""
from __future__ import annotations

import numpy as np
import pytest

from models.choice import build_swapper
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.processors import ClassicSwapper, FaceEnhancer, NeuralSwapper
from models.registry import ModelError
from perf.synthetic_models import enhancer_like, inswapper_like
from tests import media

OPTIONS = {"many_faces": True, "opacity": 1.0}


def test_enhancer_changes_faces_only(hub, tmp_path):
    enhancer = FaceEnhancer(hub, model_path=enhancer_like(tmp_path / "GFPGANv1.4.onnx"))
    frame = media.group_photo()
    swapped, alone = enhancer.process([frame.copy(), frame.copy()], [FrameContext(sources={"classic": "a face"}, options=OPTIONS), FrameContext(options=OPTIONS)])
    assert np.array_equal(alone, frame), "a client without a source face gets its frame back as sent"
    output = swapped
    faces = hub.analyser.analyse([frame], [True], False)[0]
    inside, background = media.region_changes(frame, output, [face.box for face in faces])
    assert min(inside) > 3.0, inside
    assert background < 0.5, "pixels far from faces stay as they were"


def test_enhancer_after_a_swapper_enhances_its_tracked_faces_with_no_second_detection(hub, tmp_path, monkeypatch):
    """The enhancer follows the swapper's tracks: one detection per frame, and a face the
    detector misses for a frame (still swapped, held by its track) is still enhanced."""
    swapper = build_swapper("classic", hub)
    enhancer = FaceEnhancer(hub, model_path=enhancer_like(tmp_path / "GFPGANv1.4.onnx"))
    group = media.group_photo()
    people = hub.analyser.detector.detect([group])[0]
    client = FrameContext(options={"many_faces": True}, sources={"classic": swapper.prepare_source(group)})
    detector, calls = hub.analyser.detector, []

    class MissesTheFirstFaceOnTheLastFrame:
        def detect(self, images):
            calls.extend([len(images)] if images else [])
            found = detector.detect(images)
            return [[f for f in faces if len(calls) != 4 or f is not faces[0]] for faces in found]

    monkeypatch.setattr(hub.analyser, "detector", MissesTheFirstFaceOnTheLastFrame())
    for frame_number in range(4):
        this = client.frame(frame_number, frame_number / 30)  # both processors get the frame's one context
        frame = group.copy()
        swapped = swapper.process([frame], [this])[0].copy()
        enhanced = enhancer.process([frame], [this])[0]
    assert calls == [1, 1, 1, 1], "the enhancer reused the swapper's analysis of each frame"
    inside, _ = media.region_changes(swapped, enhanced, [face.box for face in people])
    assert min(inside) > 3.0, f"every face enhanced on the last frame, where one was not detected: {inside}"


def test_missing_enhancer_weights_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError, match="gfpgan_1.4"):
        FaceEnhancer(ModelHub(ModelSettings(models_dir=tmp_path)))


def test_auto_picks_inswapper_only_when_its_weights_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FACESTREAM_MODELS_DIR", raising=False)
    assert isinstance(build_swapper("auto", ModelHub(ModelSettings(models_dir=tmp_path))), ClassicSwapper)
    inswapper_like(tmp_path / "inswapper_128.onnx")
    assert isinstance(build_swapper("auto", ModelHub(ModelSettings(models_dir=tmp_path))), NeuralSwapper)
