"""Face enhancers on graphs with the real models' exact signatures, against a NumPy reference
written here from the published facts: each model's template and crop size, the input's
normalisation, the output's decoding, CodeFormer's `weight`, the blurred box mask and the
blend amount."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from models.choice import PROCESSORS
from models.enhancer import ENHANCERS, EnhanceJob, Enhancer
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.processors import FaceEnhancer
from models.registry import MODELS, ModelError, locate
from models.simulated import COST_TABLES, cost_of
from perf.synthetic_models import enhancer_file_like, enhancer_like
from tests import media
from tests.models.published import box_mask
from tests.models.test_swap_models import PUBLISHED_TEMPLATES

# name: (template, crop size, takes CodeFormer's `weight`), as published.
PUBLISHED = {
    "gfpgan_1.2": ("ffhq_512", 512, False),
    "gfpgan_1.3": ("ffhq_512", 512, False),
    "gfpgan_1.4": ("ffhq_512", 512, False),
    "gpen_bfr_256": ("arcface_128", 256, False),
    "gpen_bfr_512": ("ffhq_512", 512, False),
    "gpen_bfr_1024": ("ffhq_512", 1024, False),
    "gpen_bfr_2048": ("ffhq_512", 2048, False),
    "codeformer": ("ffhq_512", 512, True),
    "restoreformer_plus_plus": ("ffhq_512", 512, False),
}
PUBLISHED_LICENCES = {"gfpgan": "Apache-2.0", "gpen_bfr": "non-commercial", "codeformer": "S-Lab License 1.0",
                      "restoreformer": "Apache-2.0"}
BOX_MASK_BLUR = 0.3
SWAPPED = {"sources": {"classic": "a face"}}  # the enhancer restores swapped frames only


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("enhancers")
    for name, (_, size, takes_weight) in PUBLISHED.items():
        enhancer_like(directory / f"{name}.onnx", size, takes_weight)
    return directory


@pytest.fixture(scope="module")
def enhancer_hub(models_dir) -> ModelHub:
    return ModelHub(ModelSettings(models_dir=models_dir))


@pytest.fixture(scope="module")
def group(hub):
    frame = media.group_photo()
    return frame, hub.analyser.analyse([frame], [True], False)[0]



def reference_enhance(path: Path, name: str, frame: np.ndarray, faces, blend: float, weight: float) -> np.ndarray:
    """The published enhancer, face by face: crop on the template at the model's size, RGB,
    (x / 255 - 0.5) / 0.5, run (CodeFormer with its weight), output [0] clipped to [-1, 1],
    (x + 1) / 2 * 255, BGR; pasted back through the box mask, then addWeighted(frame, 1 - b,
    pasted, b). A batch crops every face from the frame as it came, then pastes them in order."""
    template, size, takes_weight = PUBLISHED[name]
    session = ort.InferenceSession(str(path))
    height, width = frame.shape[:2]
    result = frame.copy()
    for face in faces:
        matrix, _ = cv2.estimateAffinePartial2D(face.kps, np.float32(PUBLISHED_TEMPLATES[template]) * size,
                                                method=cv2.RANSAC, ransacReprojThreshold=100)
        crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        feeds = {"input": ((crop[..., ::-1] / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)}
        if takes_weight:
            feeds["weight"] = np.array([weight], np.float64)
        output = session.run(None, feeds)[0][0]
        restored = ((np.clip(output, -1, 1) + 1) / 2 * 255).round().astype(np.uint8).transpose(1, 2, 0)[..., ::-1]
        inverse = cv2.invertAffineTransform(matrix)
        mask = cv2.warpAffine(box_mask(size, BOX_MASK_BLUR), inverse, (width, height)).clip(0, 1)[..., None]
        back = cv2.warpAffine(np.ascontiguousarray(restored), inverse, (width, height), borderMode=cv2.BORDER_REPLICATE)
        pasted = (result * (1 - mask) + back * mask).astype(np.uint8)
        result = cv2.addWeighted(result, 1 - blend, pasted, blend, 0)
    return result


class CountingSession:
    """A session that records each call's batch size and weight."""

    def __init__(self, session) -> None:
        self.session = session
        self.calls: list[tuple[int, float | None]] = []

    def run(self, names, feeds):
        weight = feeds.get("weight")
        self.calls.append((len(feeds["input"]), None if weight is None else float(weight[0])))
        return self.session.run(names, feeds)


def test_the_table_is_the_published_one_and_each_enhancer_is_a_registered_frame_processor():
    assert {name: (m.crop.template, m.crop.size, m.takes_weight) for name, m in ENHANCERS.items()} == PUBLISHED
    for name in PUBLISHED:
        assert (ENHANCERS[name].crop.mean, ENHANCERS[name].crop.std, ENHANCERS[name].crop.signed_output) == (
            (0.5,) * 3, (0.5,) * 3, True), "RGB (x / 255 - 0.5) / 0.5 in, [-1, 1] out"
        spec = MODELS[name]
        assert spec.role == "enhancer" and name in PROCESSORS
        assert spec.url == f"https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/{name}.onnx"
        assert spec.mirror == f"https://huggingface.co/facefusion/models-3.0.0/resolve/main/{name}.onnx"
        assert spec.crc32_sidecar
        assert spec.licence.startswith(next(v for k, v in PUBLISHED_LICENCES.items() if name.startswith(k))), name
    assert {n for n, spec in MODELS.items() if spec.role == "enhancer"} == set(PUBLISHED)


def test_gfpgan_1_4_is_found_under_facefusions_and_deep_live_cams_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FACESTREAM_MODELS_DIR", raising=False)
    for filename in ("GFPGANv1.4.onnx", "gfpgan_1.4.onnx"):
        directory = tmp_path / filename
        directory.mkdir()
        enhancer_like(directory / filename)
        assert locate(MODELS["gfpgan_1.4"], directory) == directory / filename
    with pytest.raises(ModelError, match=r"gfpgan_1.4 \(gfpgan_1.4.onnx or GFPGANv1.4.onnx\) not found"):
        FaceEnhancer(ModelHub(ModelSettings(models_dir=tmp_path)))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_enhancer_restores_every_face_of_a_batch_as_its_reference_does(enhancer_hub, models_dir, group, name):
    """Two clients, each with its own blend amount and fidelity, in one batch: every face as the
    published pipeline restores and blends it; one model call for all faces (CodeFormer: one
    per distinct weight)."""
    enhancer = Enhancer(name, enhancer_hub.session(name), enhancer_hub.host)
    counting = enhancer.session = CountingSession(enhancer.session)
    frame, faces = group
    faces = faces if PUBLISHED[name][1] <= 512 else faces[:1]  # a 2048 px crop is 50 MB of float32 a face
    clients = [(0.8, 0.5), (0.35, 0.9)]  # (blend, weight)
    frames = [frame.copy() for _ in clients]
    enhancer.enhance([EnhanceJob(image, face, blend, weight)
                      for image, (blend, weight) in zip(frames, clients) for face in faces])
    for image, (blend, weight) in zip(frames, clients):
        expected = reference_enhance(models_dir / f"{name}.onnx", name, frame, faces, blend, weight)
        difference = np.abs(image.astype(int) - expected)
        assert difference.max() <= 2 and difference.mean() < 0.1, (blend, weight, difference.max(), difference.mean())
    inside, background = media.region_changes(frame, frames[0], [face.box for face in faces])
    assert min(inside) > 3.0 and background < 0.5, (inside, background)
    if PUBLISHED[name][2]:
        assert sorted(counting.calls) == [(len(faces), 0.5), (len(faces), 0.9)], "one call per distinct weight"
    else:
        assert counting.calls == [(2 * len(faces), None)], "one call for every face of the batch"


def test_clients_with_their_own_blend_and_weight_get_in_one_batch_what_each_gets_alone(enhancer_hub):
    processor = FaceEnhancer(enhancer_hub, "codeformer", name="codeformer")
    frame = media.group_photo()
    chosen = [{"enhancer_blend": 30, "enhancer_weight": 0.1}, {"enhancer_blend": 100, "enhancer_weight": 1.0},
              {"enhancer_blend": 100, "enhancer_weight": 0.1}, {}, {"enhancer_blend": 0}]
    contexts = [FrameContext(client_id=i, options=options, **SWAPPED) for i, options in enumerate(chosen)]
    outputs = processor.process([frame.copy() for _ in chosen], contexts)
    for options, output in zip(chosen, outputs):
        alone = processor.process([frame.copy()], [FrameContext(options=options, **SWAPPED)])[0]
        assert np.array_equal(output, alone), options
    assert np.array_equal(outputs[-1], frame), "a blend of 0 leaves the frame alone"
    for one in range(4):
        for other in range(one + 1, 4):
            assert np.abs(outputs[one].astype(int) - outputs[other]).mean() > 0.05, (chosen[one], chosen[other])


def test_the_default_enhancer_restores_swapped_frames_only(enhancer_hub, group):
    frame, faces = group
    enhancer = FaceEnhancer(enhancer_hub)
    swapped, alone = enhancer.process([frame.copy(), frame.copy()], [FrameContext(**SWAPPED), FrameContext()])
    assert np.array_equal(alone, frame), "a client without a source face gets its frame back as sent"
    expected = reference_enhance(enhancer_hub.settings.models_dir / "gfpgan_1.4.onnx", "gfpgan_1.4", frame, faces,
                                 0.8, 0.5)
    assert np.abs(swapped.astype(int) - expected).max() <= 2, "GFPGAN 1.4 at the default blend"


@pytest.mark.parametrize("name, graph, message", [
    ("gpen_bfr_512", {"side": 256}, r"gpen_bfr_512: inputs input \[\S+, 3, 256, 256\]; .* input \(N, 3, 512, 512\)"),
    ("codeformer", {"side": 256}, r"codeformer: inputs input \[\S+, 3, 256, 256\]; .* input \(N, 3, 512, 512\)"),
])
def test_a_file_that_is_not_the_model_is_refused_at_start_up(hub, tmp_path, name, graph, message):
    with pytest.raises(ModelError, match=message):
        FaceEnhancer(hub, name, enhancer_like(tmp_path / f"{name}.onnx", **graph), name=name)


def test_enhancers_cost_gfpgans_per_pixel_on_the_simulated_device_and_echo_the_crop(tmp_path, group):
    table = COST_TABLES["h100"]
    gfpgan = table["gfpgan_1.4"].per_item_ms
    for name, scale in (("gpen_bfr_256", 0.25), ("codeformer", 1), ("gpen_bfr_1024", 4), ("gpen_bfr_2048", 16)):
        path = enhancer_file_like(tmp_path, name)
        assert cost_of(table, name, path).per_item_ms == pytest.approx(gfpgan * scale), name
    simulated = ModelHub(ModelSettings(provider="simulated", models_dir=tmp_path))
    enhancer = Enhancer("codeformer", simulated.session("codeformer"), simulated.host)
    frame, faces = group
    image = frame.copy()
    enhancer.enhance([EnhanceJob(image, faces[0], blend=1.0, weight=0.2)])
    inside, background = media.region_changes(frame, image, [faces[0].box])
    assert inside[0] < 3.0 and background == 0, "the echoed crop pastes back as (nearly) the face it was"


def test_weight_is_fed_only_to_a_file_that_declares_it(hub, tmp_path, group):
    """MODELS.md: CodeFormer's `weight` is fed only when the model declares it: an export
    without it loads and restores; a file that has it gets each client's fidelity."""
    frame, faces = group
    without = Enhancer("codeformer", hub.session("codeformer", enhancer_like(tmp_path / "a.onnx", 512, False)))
    with_weight = Enhancer("gfpgan_1.3", hub.session("gfpgan_1.3", enhancer_like(tmp_path / "b.onnx", 512, True)))
    assert (without.takes_weight, with_weight.takes_weight) == (False, True)
    for enhancer in (without, with_weight):
        counting = enhancer.session = CountingSession(enhancer.session)
        images = [frame.copy(), frame.copy()]
        enhancer.enhance([EnhanceJob(image, faces[0], blend=1.0, weight=weight) for image, weight in zip(images, (0.2, 0.9))])
        assert not np.array_equal(images[0], frame)
        assert sorted(counting.calls) == ([(2, None)] if enhancer is without else [(1, 0.2), (1, 0.9)])
