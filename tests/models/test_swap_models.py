"""Swapper families on graphs with the real models' exact signatures, against NumPy references
written here from the published facts of each family (template, crop size, normalisation, how
the identity is fed, output range)."""
from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from insightface.utils.face_align import estimate_norm

from models.alignment import TEMPLATES, align
from models.face import SwapJob
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.processors import NeuralSwapper
from models.registry import ModelError
from models.swap_models import Hyperswap
from perf.synthetic_models import hyperswap_like, inswapper_like
from tests import media

OPTIONS = {"many_faces": True, "opacity": 1.0, "mouth_mask": 0, "color_correction": False}


@pytest.fixture(scope="module")
def hyperswap_path(tmp_path_factory):
    return hyperswap_like(tmp_path_factory.mktemp("models") / "hyperswap_1a_256.onnx")


def test_arcface_128_is_insightfaces_inswapper_crop():
    kps = np.array([[100, 120], [160, 118], [131, 150], [108, 185], [154, 183]], np.float32)
    insightface = estimate_norm(kps, 128)  # what inswapper's norm_crop2 warps with
    ours, _ = cv2.estimateAffinePartial2D(kps, TEMPLATES["arcface_128"] * 128)
    assert np.allclose(cv2.transform(kps[None], insightface), cv2.transform(kps[None], ours), atol=0.05)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_alignment_puts_the_keypoints_on_the_template(template):
    face = media.group_photo()
    kps = TEMPLATES[template] * 90 + [200, 140]  # a face of 90 px at (200, 140): a pure scale and shift
    crop, matrix = align(face, kps, template, 256)
    assert crop.shape == (256, 256, 3)
    assert np.allclose(cv2.transform(kps[None], matrix)[0], TEMPLATES[template] * 256, atol=0.01)


def hyperswap_reference(model_path, frame: np.ndarray, kps: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """MODELS.md's hyperswap, step by step: arcface_128 at 256 px (RANSAC similarity, INTER_AREA,
    replicated border), RGB, /255, (x - 0.5) / 0.5, NCHW; `source` the L2-normalised embedding;
    output [0] times 0.5 plus 0.5, clipped to 0..1, RGB -> BGR, x 255."""
    matrix, _ = cv2.estimateAffinePartial2D(kps, TEMPLATES["arcface_128"] * 256, method=cv2.RANSAC,
                                            ransacReprojThreshold=100)
    crop = cv2.warpAffine(frame, matrix, (256, 256), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    target = ((crop[..., ::-1] / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)
    source = (embedding / np.linalg.norm(embedding))[None].astype(np.float32)
    output = ort.InferenceSession(str(model_path)).run(None, {"source": source, "target": target})[0][0]
    return (np.clip(output * 0.5 + 0.5, 0, 1).transpose(1, 2, 0)[..., ::-1] * 255).round().astype(np.uint8)


def test_hyperswap_batches_every_face_of_every_frame_as_the_reference_does(hub, hyperswap_path):
    model = Hyperswap("hyperswap_1a_256", hub.session("hyperswap_1a_256", hyperswap_path), hub.host)
    frames = [media.group_photo(), cv2.flip(media.group_photo(), 1)]
    faces = hub.analyser.analyse(frames, [True, True], False)
    rng = np.random.default_rng(1)
    people = [rng.standard_normal(512).astype(np.float32) * 7 for _ in frames]  # two clients, raw embeddings
    jobs = [SwapJob(index, face, model.identity(people[index])) for index, frame_faces in enumerate(faces)
            for face in frame_faces]
    assert len(jobs) == 12, "six faces in each frame"
    fakes, matrices = model.generate(frames, jobs)
    for job, fake in zip(jobs, fakes):
        expected = hyperswap_reference(hyperswap_path, frames[job.frame_index], job.face.kps, people[job.frame_index])
        assert np.abs(fake.astype(int) - expected).max() <= 1, "one batch, each face with its own client's identity"
    assert not np.array_equal(fakes[0], model.generate(frames, [SwapJob(0, jobs[0].face, model.identity(people[1]))])[0][0])


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


def test_a_file_that_is_not_the_family_is_refused_by_its_inputs(hub, tmp_path):
    wrong = inswapper_like(tmp_path / "hyperswap_1b_256.onnx")  # inputs source and target, but 128 px
    with pytest.raises(ModelError, match=r"hyperswap_1b_256: inputs .*target \(N, 3, 256, 256\)"):
        Hyperswap("hyperswap_1b_256", hub.session("hyperswap_1b_256", wrong), hub.host)


def test_hyperswap_runs_on_the_simulated_device(hub, hyperswap_path):
    """The simulated session echoes the crop as the "swap" and gives the mask no input matches as zeros."""
    simulated = ModelHub(ModelSettings(provider="simulated"))
    model = Hyperswap("hyperswap_1a_256", simulated.session("hyperswap_1a_256", hyperswap_path), simulated.host)
    frame = media.group_photo()
    face = hub.analyser.analyse([frame], [True], False)[0][0]
    fakes, _ = model.generate([frame], [SwapJob(0, face, model.identity(np.ones(512, np.float32)))])
    crop, _ = align(frame, face.kps, "arcface_128", 256)
    assert np.abs(fakes[0].astype(int) - crop).max() <= 1, "the echoed crop decodes back to itself"
