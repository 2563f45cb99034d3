"""The optional enhancer on a graph with GFPGAN's signature, and how `auto` picks a swapper."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from models.processors import ClassicSwapper, FaceEnhancer, ModelHub, ModelSettings, NeuralSwapper, build_swapper
from models.registry import ModelError
from perf.synthetic_models import gfpgan_like, inswapper_like
from tests import media


@dataclass
class Context:
    """A client as processors see it (server.processors.FrameContext has the same fields)."""

    sources: dict = field(default_factory=dict)
    options: dict = field(default_factory=lambda: {"many_faces": True, "opacity": 1.0})
    face_map: tuple = ()
    state: dict = field(default_factory=dict)
    time: float = 0.0


def test_enhancer_changes_faces_only(hub, tmp_path):
    enhancer = FaceEnhancer(hub, model_path=gfpgan_like(tmp_path / "GFPGANv1.4.onnx"))
    frame = media.group_photo()
    swapped, alone = enhancer.process([frame.copy(), frame.copy()], [Context(sources={"classic": "a face"}), Context()])
    assert np.array_equal(alone, frame), "a client without a source face gets its frame back as sent"
    output = swapped
    faces = hub.analyser.analyse([frame], [True], False)[0]
    inside, background = media.region_changes(frame, output, [face.box for face in faces])
    assert min(inside) > 3.0, inside
    assert background < 0.5, "pixels far from faces stay as they were"


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
