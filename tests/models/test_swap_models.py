"""Swapper families on graphs with the real models' exact signatures, against NumPy references
written here from the published facts of each family (template, crop size, normalisation, how
the identity is fed, output range)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from skimage import data as skimage_data
from insightface.utils.face_align import arcface_dst, estimate_norm, norm_crop

from models.alignment import TEMPLATES, align
from models.choice import build_processors
from models.face import SwapJob
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.processors import NeuralSwapper
from models.registry import MODELS, ModelError, locate
from models.swap_models import SWAP_MODELS, Hyperswap
from perf.synthetic_models import converter_like, inswapper_like, swapper_like
from tests import media

OPTIONS = {"many_faces": True, "opacity": 1.0, "mouth_mask": 0, "color_correction": False}


@dataclass(frozen=True)
class Published:
    """One family as its published facts describe it, for the reference below."""

    template: str
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    signed: bool  # output in [-1, 1]
    source: str  # "embedding" (L2-normalised), "converted" / "converted raw" (through `converter`), or "crop"
    converter: str = ""
    source_template: str = ""
    source_size: int = 0


HALF, ZERO, ONE = (0.5,) * 3, (0.0,) * 3, (1.0,) * 3
# The published five-point templates (normalised; insightface's `arcface_dst` gives the other two).
PUBLISHED_TEMPLATES = {
    "arcface_112_v1": [(.35473214, .45658929), (.64526786, .45658929), (.5, .61154464), (.37913393, .776875),
                       (.62086607, .776875)],
    "arcface_112_v2": arcface_dst / 112,
    "arcface_128": (arcface_dst + [8, 0]) / 128,
    "ffhq_512": [(.37691676, .46864664), (.62285697, .46912813), (.50123859, .61331904), (.39308822, .725411),
                 (.61150205, .72490465)],
    "mtcnn_512": [(.36562865, .46733799), (.63305391, .46585885), (.50019127, .61942959), (.39032951, .77598822),
                  (.61178945, .77476328)],
}
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PUBLISHED = {
    "hyperswap_1a_256": Published("arcface_128", 256, HALF, HALF, True, "embedding"),
    "simswap_256": Published("arcface_112_v1", 256, *IMAGENET, False, "converted", "crossface_simswap"),
    "simswap_unofficial_512": Published("arcface_112_v1", 512, ZERO, ONE, False, "converted", "crossface_simswap"),
    "ghost_2_256": Published("arcface_112_v1", 256, HALF, HALF, True, "converted raw", "crossface_ghost"),
    "hififace_unofficial_256": Published("mtcnn_512", 256, HALF, HALF, True, "converted", "crossface_hififace"),
    "blendswap_256": Published("ffhq_512", 256, ZERO, ONE, False, "crop", source_template="arcface_112_v2",
                               source_size=112),
    "uniface_256": Published("ffhq_512", 256, HALF, HALF, True, "crop", source_template="ffhq_512", source_size=256),
}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Every family's file (and converter) as a graph with the real one's signature."""
    directory = tmp_path_factory.mktemp("models")
    for name, facts in PUBLISHED.items():
        source = (3, facts.source_size, facts.source_size) if facts.source == "crop" else (512,)
        swapper_like(directory / f"{name}.onnx", source, facts.size, facts.signed, mask=name.startswith("hyperswap"))
        if facts.converter:
            converter_like(directory / f"{facts.converter}.onnx")
    return directory


@pytest.fixture(scope="module")
def family_hub(models_dir):
    return ModelHub(ModelSettings(models_dir=models_dir))


@pytest.fixture(scope="module")
def hyperswap_path(models_dir):
    return models_dir / "hyperswap_1a_256.onnx"


def test_arcface_128_is_insightfaces_inswapper_crop():
    kps = np.array([[100, 120], [160, 118], [131, 150], [108, 185], [154, 183]], np.float32)
    insightface = estimate_norm(kps, 128)  # what inswapper's norm_crop2 warps with
    ours, _ = cv2.estimateAffinePartial2D(kps, TEMPLATES["arcface_128"] * 128)
    assert np.allclose(cv2.transform(kps[None], insightface), cv2.transform(kps[None], ours), atol=0.05)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_alignment_puts_the_keypoints_on_the_template(template):
    face = media.group_photo()
    assert np.allclose(TEMPLATES[template], PUBLISHED_TEMPLATES[template], atol=1e-6), "the published numbers"
    kps = TEMPLATES[template] * 90 + [200, 140]  # a face of 90 px at (200, 140): a pure scale and shift
    crop, matrix = align(face, kps, template, 256)
    assert crop.shape == (256, 256, 3)
    assert np.allclose(cv2.transform(kps[None], matrix)[0], TEMPLATES[template] * 256, atol=0.01)


def warp(image: np.ndarray, kps: np.ndarray, template: str, size: int) -> np.ndarray:
    """MODELS.md's crop: RANSAC similarity onto the template at `size`, INTER_AREA, replicated border."""
    matrix, _ = cv2.estimateAffinePartial2D(kps, np.float32(PUBLISHED_TEMPLATES[template]) * size,
                                            method=cv2.RANSAC, ransacReprojThreshold=100)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def nchw(crop: np.ndarray, mean=ZERO, std=ONE) -> np.ndarray:
    """BGR -> RGB, / 255, (x - mean) / std, NCHW with a batch of one."""
    return ((crop[..., ::-1] / 255.0 - np.array(mean)) / np.array(std)).transpose(2, 0, 1)[None].astype(np.float32)


def raw_embedding(photo) -> np.ndarray:
    """The recognizer's output for the source face as it comes (what converters take): its
    arcface_112_v2 crop, RGB, x / 127.5 - 1."""
    crop = norm_crop(photo.image, photo.face.kps, 112)
    blob = (crop[..., ::-1] / 127.5 - 1.0).transpose(2, 0, 1)[None].astype(np.float32)
    recognizer = ort.InferenceSession(str(locate(MODELS["w600k_mbf"])))
    return recognizer.run(None, {recognizer.get_inputs()[0].name: blob})[0]


def reference_source(name: str, models_dir, photo) -> np.ndarray:
    facts = PUBLISHED[name]
    if facts.source == "crop":
        return nchw(warp(photo.image, photo.face.kps, facts.source_template, facts.source_size))
    vector = raw_embedding(photo)
    if facts.source.startswith("converted"):
        converter = ort.InferenceSession(str(models_dir / f"{facts.converter}.onnx"))
        vector = converter.run(None, {"input": vector})[0]
    return vector if facts.source == "converted raw" else vector / np.linalg.norm(vector)


def reference_swap(name: str, models_dir, frame: np.ndarray, kps: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The family's published pipeline, step by step: crop, normalise, run, output [0] (times std
    plus mean for the [-1, 1] families), clipped to 0..1, RGB -> BGR, x 255."""
    facts = PUBLISHED[name]
    target = nchw(warp(frame, kps, facts.template, facts.size), facts.mean, facts.std)
    output = ort.InferenceSession(str(models_dir / f"{name}.onnx")).run(None, {"source": source, "target": target})[0][0]
    rgb = output.transpose(1, 2, 0)
    if facts.signed:
        rgb = rgb * np.array(facts.std) + np.array(facts.mean)
    return (np.clip(rgb, 0, 1)[..., ::-1] * 255).round().astype(np.uint8)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_family_batches_every_face_of_every_frame_as_its_reference_does(family_hub, models_dir, name):
    model = SWAP_MODELS[name](name, family_hub, models_dir / f"{name}.onnx")
    tom = family_hub.analyser.source_face(cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png"))))
    astronaut = family_hub.analyser.source_face(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    photos = [tom, astronaut]  # two clients, one per frame
    frames = [media.group_photo(), cv2.flip(media.group_photo(), 1)]
    faces = family_hub.analyser.analyse(frames, [True, True], False)
    identities = [model.identity(photo) for photo in photos]
    jobs = [SwapJob(index, face, identities[index]) for index, frame_faces in enumerate(faces) for face in frame_faces]
    assert len(jobs) == 12, "six faces in each frame"
    fakes, _ = model.generate(frames, jobs)
    for job, fake in zip(jobs, fakes):
        source = reference_source(name, models_dir, photos[job.frame_index])
        assert np.allclose(job.identity, source[0], atol=1e-5), "the identity as the family feeds it"
        expected = reference_swap(name, models_dir, frames[job.frame_index], job.face.kps, source)
        assert np.abs(fake.astype(int) - expected).max() <= 1, "one batch, each face with its own client's identity"
    assert not np.array_equal(fakes[0], fakes[6][:, ::-1]), "the two clients' identities differ"


def test_the_hyperswap_processor_swaps_faces_only_and_per_client(hub, hyperswap_path):
    swapper = NeuralSwapper(hub, "hyperswap_1a_256", model_path=hyperswap_path, name="hyperswap_1a_256")
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    source = swapper.prepare_source(tom)
    frame = media.group_photo()
    swapped, alone = swapper.process([frame.copy(), frame.copy()],
                                     [FrameContext(sources={"hyperswap_1a_256": source}, options=OPTIONS),
                                      FrameContext(options=OPTIONS)])
    assert np.array_equal(alone, frame), "a client without a source face gets its frame back as sent"
    faces = hub.analyser.analyse([frame], [True], False)[0]
    inside, background = media.region_changes(frame, swapped, [face.box for face in faces])
    assert min(inside) > 3.0, inside
    assert background < 0.5, "pixels far from faces stay as they were"


def test_a_batch_mixes_clients_that_chose_different_swappers(family_hub, models_dir):
    """One processor with two models: each client's faces go through the model it chose (the
    `swapper` option; the first model for a client that chose none), in one batch, exactly as
    a processor with that model alone would swap them."""
    both = NeuralSwapper(family_hub, "hyperswap_1a_256", name="hyperswap_1a_256")
    both.join(NeuralSwapper(family_hub, "ghost_2_256", name="ghost_2_256"))
    assert both.option_choices == {"swapper": {"hyperswap_1a_256": "ResearchRAIL (FaceFusion, 2025)",
                                               "ghost_2_256": "Apache-2.0 (ai-forever, 2022)"},
                                   "face_mask_types": ("box",)}
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    frame = media.group_photo()
    chosen = [None, "ghost_2_256", "hyperswap_1a_256"]
    source = both.prepare_source(tom)
    outputs = both.process([frame.copy() for _ in chosen],
                           [FrameContext(client_id=i, sources={both.name: source},
                                         options={**OPTIONS, **({"swapper": c} if c else {})})
                            for i, c in enumerate(chosen)])
    for choice, output in zip(chosen, outputs):
        name = choice or "hyperswap_1a_256"
        alone = NeuralSwapper(family_hub, name, name=name)
        expected = alone.process([frame.copy()], [FrameContext(sources={name: alone.prepare_source(tom)},
                                                               options=OPTIONS)])[0]
        assert np.array_equal(output, expected), choice
    assert not np.array_equal(outputs[0], outputs[1]), "the two models swap differently"


def test_a_file_that_is_not_the_family_is_refused_by_its_inputs(hub, tmp_path):
    wrong = inswapper_like(tmp_path / "hyperswap_1b_256.onnx")  # inputs source and target, but 128 px
    with pytest.raises(ModelError, match=r"hyperswap_1b_256: inputs .*target \(N, 3, 256, 256\)"):
        Hyperswap("hyperswap_1b_256", hub, wrong)


def test_hyperswap_runs_on_the_simulated_device(hub, hyperswap_path):
    """The simulated session echoes the crop as the "swap" and gives the mask no input matches as zeros."""
    simulated = ModelHub(ModelSettings(provider="simulated"))
    model = Hyperswap("hyperswap_1a_256", simulated, hyperswap_path)
    frame = media.group_photo()
    face = hub.analyser.analyse([frame], [True], False)[0][0]
    fakes, _ = model.generate([frame], [SwapJob(0, face, np.ones(512, np.float32))])
    crop, _ = align(frame, face.kps, "arcface_128", 256)
    assert np.abs(fakes[0].astype(int) - crop).max() <= 1, "the echoed crop decodes back to itself"


def test_the_classic_swapper_beside_a_neural_one_is_refused_at_start_up(models_dir):
    """Both would swap each face; several neural swappers are one processor, the client's choice."""
    settings = ModelSettings(models_dir=models_dir)
    with pytest.raises(ModelError, match="classic and hyperswap_1a_256 would swap each face twice"):
        build_processors(["classic", "hyperswap_1a_256"], settings)
    [joined] = build_processors(["hyperswap_1a_256", "ghost_2_256", "hyperswap_1a_256"], settings)
    assert list(joined.models) == ["hyperswap_1a_256", "ghost_2_256"]
