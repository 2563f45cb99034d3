"""Pixel boost: the polyphase split and merge, and swapper families run on boosted crops, against
NumPy references written here (crop at S*t on the template, every t-th pixel from (i, j) is
sub-image i*t + j, the model on each beside its face's identity, interleaved back)."""
from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from insightface.model_zoo.inswapper import INSwapper
from insightface.utils.face_align import arcface_dst, estimate_norm, norm_crop2
from skimage import data as skimage_data

from models import pixel_boost
from models.device import ModelDevice
from models.face import SwapJob
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.inswapper import InSwapper
from models.processors import NeuralSwapper
from models.simulated import COST_TABLES, cost_of
from models.swap_models import Hyperswap
from perf.synthetic_models import family_like, inswapper_like, swapper_like
from tests import media
from tests.models.test_swap_models import PUBLISHED, PUBLISHED_TEMPLATES, warp

OPTIONS = {"many_faces": True, "opacity": 1.0, "mouth_mask": 0, "color_correction": False}


@pytest.mark.parametrize("t", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_split_takes_every_t_th_pixel_and_merge_undoes_it_exactly(t, dtype):
    rng = np.random.default_rng(t)
    crops = (rng.integers(0, 256, (3, 8 * t, 8 * t, 3)) if dtype is np.uint8
             else rng.standard_normal((3, 8 * t, 8 * t, 3))).astype(dtype)
    subimages = pixel_boost.split(crops, t)
    assert subimages.shape == (3 * t * t, 8, 8, 3) and subimages.dtype == dtype
    for n in range(3):
        for i in range(t):
            for j in range(t):
                assert np.array_equal(subimages[n * t * t + i * t + j], crops[n, i::t, j::t]), (n, i, j)
    merged = pixel_boost.merge(subimages, t)
    assert merged.dtype == dtype and np.array_equal(merged, crops)
    grey = crops[..., 0]  # no channel axis: the same split
    assert np.array_equal(pixel_boost.merge(pixel_boost.split(grey, t), t), grey)
    assert np.array_equal(pixel_boost.split(grey, t), subimages[..., 0])


def test_a_crop_that_is_not_a_whole_multiple_is_refused():
    with pytest.raises(ValueError, match="do not split"):
        pixel_boost.split(np.zeros((1, 10, 10, 3), np.uint8), 3)
    with pytest.raises(ValueError, match="not whole crops"):
        pixel_boost.merge(np.zeros((5, 4, 4, 3), np.uint8), 2)


def test_the_options_values_are_factors():
    assert [pixel_boost.factor(choice) for choice in ("1x", "2x", "3x", "4x")] == [1, 2, 3, 4]


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_insightfaces_crop_at_128_t_is_inswappers_template_at_that_size(t):
    """`estimate_norm` takes any multiple of 112 as arcface_112 (no shift): 128 t for t = 1..4
    is not one, so it scales inswapper's template (arcface_dst + [8, 0], / 128) to 128 t."""
    kps = np.array([[100, 120], [160, 118], [131, 150], [108, 185], [154, 183]], np.float32)
    size = 128 * t
    assert size % 112, "the 112 branch would drop the 8 px shift"
    template = (arcface_dst + [8.0, 0.0]) / 128 * size
    ours, _ = cv2.estimateAffinePartial2D(kps, np.float32(template), method=cv2.RANSAC, ransacReprojThreshold=100)
    insightface = estimate_norm(kps, size)
    assert np.allclose(cv2.transform(kps[None], insightface), cv2.transform(kps[None], ours), atol=0.05 * t)
    assert np.allclose(insightface, t * estimate_norm(kps, 128), atol=1e-4), "the 128 px crop, t times the size"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A hyperswap graph whose output depends on where each pixel sits, ghost's (with its
    converter) and inswapper's (convolutions: each pixel's neighbours count too)."""
    directory = tmp_path_factory.mktemp("models")
    swapper_like(directory / "hyperswap_1a_256.onnx", (512,), 256, True, mask=True, positional=True)
    family_like(directory, "ghost_2_256")
    inswapper_like(directory / "inswapper_128.onnx")
    return directory


@pytest.fixture(scope="module")
def boost_hub(models_dir):
    return ModelHub(ModelSettings(models_dir=models_dir))


@pytest.fixture(scope="module")
def sources(boost_hub):
    tom = boost_hub.analyser.source_face(cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png"))))
    astronaut = boost_hub.analyser.source_face(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    return [tom, astronaut]


def interleave(parts: list[np.ndarray], t: int) -> np.ndarray:
    """Sub-image i*t + j back at rows i, i+t, ... and columns j, j+t, ..., one by one."""
    side = parts[0].shape[0] * t
    whole = np.zeros((side, side, 3), np.uint8)
    for i in range(t):
        for j in range(t):
            whole[i::t, j::t] = parts[i * t + j]
    return whole


def hyperswap_reference(models_dir, frame, kps, identity, t) -> np.ndarray:
    """hyperswap_1a_256 boosted: the arcface_128 crop at 256 t, every t-th pixel from (i, j)
    through the model alone (RGB, (x/255 - .5)/.5, output * .5 + .5, BGR), interleaved back."""
    facts = PUBLISHED["hyperswap_1a_256"]
    session = ort.InferenceSession(str(models_dir / "hyperswap_1a_256.onnx"))
    crop = warp(frame, kps, facts.template, facts.size * t)
    parts = []
    for i in range(t):
        for j in range(t):
            sub = crop[i::t, j::t]
            target = ((sub[..., ::-1] / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].astype(np.float32)
            output = session.run(None, {"source": identity[None], "target": target})[0][0].transpose(1, 2, 0)
            parts.append((np.clip(output * 0.5 + 0.5, 0, 1)[..., ::-1] * 255).round().astype(np.uint8))
    return interleave(parts, t)


def inswapper_reference(reference: INSwapper, frame, kps, embedding, t) -> np.ndarray:
    """inswapper boosted: insightface's own crop (`norm_crop2`) at 128 t, each sub-image through
    insightface's INSwapper session with its latent (embedding @ emap, normalised), its decoding."""
    crop, _ = norm_crop2(frame, kps, 128 * t)
    latent = embedding.reshape(1, -1) @ reference.emap
    latent = (latent / np.linalg.norm(latent)).astype(np.float32)
    parts = []
    for i in range(t):
        for j in range(t):
            blob = (crop[i::t, j::t][..., ::-1] / 255.0).transpose(2, 0, 1)[None].astype(np.float32)
            predicted = reference.session.run(reference.output_names, {reference.input_names[0]: blob,
                                                                        reference.input_names[1]: latent})[0]
            parts.append(np.clip(255 * predicted[0].transpose(1, 2, 0), 0, 255).astype(np.uint8)[:, :, ::-1])
    return interleave(parts, t)


class CountingSession:
    """A model session that counts its calls and the items of each."""

    def __init__(self, session) -> None:
        self.session = session
        self.items: list[int] = []

    def run(self, names, feeds, *args):
        self.items.append(len(next(iter(feeds.values()))))
        return self.session.run(names, feeds, *args)

    def __getattr__(self, name):
        return getattr(self.session, name)


def two_clients_jobs(hub, model, sources, boosts):
    """The six faces of the group photo, and of its mirror image, each frame a client with its own
    source and boost."""
    frames = [media.group_photo(), cv2.flip(media.group_photo(), 1)]
    faces = hub.analyser.analyse(frames, [True, True], False)
    identities = [model.identity(photo) for photo in sources]
    jobs = [SwapJob(index, face, identities[index], boosts[index])
            for index, frame_faces in enumerate(faces) for face in frame_faces]
    return frames, jobs


@pytest.mark.parametrize("boosts", [(2, 2), (3, 2)])
def test_a_boosted_256_family_swaps_as_its_reference(boost_hub, models_dir, sources, boosts):
    model = Hyperswap("hyperswap_1a_256", boost_hub, models_dir / "hyperswap_1a_256.onnx")
    frames, jobs = two_clients_jobs(boost_hub, model, sources, boosts)
    fakes, matrices = model.generate(frames, jobs)
    for job, fake, matrix in zip(jobs, fakes, matrices):
        side = 256 * job.boost
        assert fake.shape == (side, side, 3) and fake.dtype == np.uint8
        expected = hyperswap_reference(models_dir, frames[job.frame_index], job.face.kps, job.identity, job.boost)
        assert np.abs(fake.astype(int) - expected).max() <= 1, "split, one batch, each face its identity, merged"
        whole, _ = cv2.estimateAffinePartial2D(job.face.kps, np.float32(PUBLISHED_TEMPLATES["arcface_128"]) * side,
                                               method=cv2.RANSAC, ransacReprojThreshold=100)
        assert np.allclose(matrix, whole, atol=1e-4), "the matrix of the whole boosted crop, for the paste-back"


@pytest.mark.parametrize("boosts", [(2, 2), (4, 3)])
def test_a_boosted_inswapper_swaps_as_insightfaces_crop_and_session_do(boost_hub, models_dir, sources, boosts):
    model = InSwapper("inswapper_128", boost_hub, models_dir / "inswapper_128.onnx")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its input shape
        reference = INSwapper(model_file=str(models_dir / "inswapper_128.onnx"))
    frames, jobs = two_clients_jobs(boost_hub, model, sources, boosts)
    fakes, _ = model.generate(frames, jobs)
    for job, fake in zip(jobs, fakes):
        assert fake.shape == (128 * job.boost, 128 * job.boost, 3)
        expected = inswapper_reference(reference, frames[job.frame_index], job.face.kps,
                                       sources[job.frame_index].face.embedding, job.boost)
        assert np.abs(fake.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("family", ["hyperswap_1a_256", "inswapper_128"])
def test_a_batch_of_mixed_boosts_is_one_model_call_and_each_face_as_alone(boost_hub, models_dir, sources, family):
    make = Hyperswap if family == "hyperswap_1a_256" else InSwapper
    model = make(family, boost_hub, models_dir / f"{family}.onnx")
    counted = model.session = CountingSession(model.session)
    frames, jobs = two_clients_jobs(boost_hub, model, sources, (1, 1))
    mixed = [SwapJob(job.frame_index, job.face, job.identity, boost) for job, boost in zip(jobs, [1, 2, 4] * 4)]
    fakes, matrices = model.generate(frames, mixed)
    assert counted.items == [4 * (1 + 4 + 16)], "all sub-images of all faces, one call"
    for job, fake, matrix in zip(mixed, fakes, matrices):
        alone, alone_matrix = model.generate(frames, [job])
        assert np.array_equal(fake, alone[0]) and np.array_equal(matrix, alone_matrix[0]), job.boost


def test_clients_with_different_swappers_and_boosts_share_a_batch(boost_hub, sources):
    """One processor, two models, four clients: each client's faces through the model and at
    the boost it chose, each model once for all its faces, each frame as a processor with that
    model alone swaps it."""
    both = NeuralSwapper(boost_hub, "hyperswap_1a_256", name="hyperswap_1a_256")
    both.join(NeuralSwapper(boost_hub, "ghost_2_256", name="ghost_2_256"))
    counters = {name: CountingSession(model.session) for name, model in both.models.items()}
    for name, counter in counters.items():
        both.models[name].session = counter
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    frame = media.group_photo()
    chosen = [("hyperswap_1a_256", "2x"), ("ghost_2_256", "3x"), ("hyperswap_1a_256", "1x"), (None, "4x")]
    source = both.prepare_source(tom)
    outputs = both.process([frame.copy() for _ in chosen],
                           [FrameContext(client_id=i, sources={both.name: source},
                                         options={**OPTIONS, "pixel_boost": boost, **({"swapper": c} if c else {})})
                            for i, (c, boost) in enumerate(chosen)])
    assert counters["hyperswap_1a_256"].items == [6 * (4 + 1 + 16)] and counters["ghost_2_256"].items == [6 * 9]
    for (choice, boost), output in zip(chosen, outputs):
        name = choice or "hyperswap_1a_256"
        alone = NeuralSwapper(boost_hub, name, name=name)
        expected = alone.process([frame.copy()], [FrameContext(sources={name: alone.prepare_source(tom)},
                                                               options={**OPTIONS, "pixel_boost": boost})])[0]
        assert np.array_equal(output, expected), (choice, boost)
    assert not np.array_equal(outputs[0], outputs[2]), "the same model at 2x and at 1x"


def test_on_the_simulated_device_a_boosted_face_costs_t_squared_faces(hub, models_dir):
    """The simulated device charges per item of a call: a face at t costs t*t faces; its echo
    (the sub-images as the swap) merges back into the boosted crop itself."""
    device = ModelDevice()
    simulated = ModelHub(ModelSettings(provider="simulated"), device=device)
    path = models_dir / "hyperswap_1a_256.onnx"
    model = Hyperswap("hyperswap_1a_256", simulated, path)
    cost = cost_of(COST_TABLES["h100"], "hyperswap_1a_256", path)
    frame = media.group_photo()
    face = hub.analyser.analyse([frame], [True], False)[0][0]
    for t in (1, 2, 4):
        fakes, _ = model.generate([frame], [SwapJob(0, face, np.ones(512, np.float32), t)])
        crop = warp(frame, face.kps, "arcface_128", 256 * t)
        assert np.abs(fakes[0].astype(int) - crop).max() <= 1, "the echoed sub-images merge back to the crop"
        items, seconds = device.costs["hyperswap_1a_256"].samples[-1]
        assert items == t * t
        assert seconds >= (cost.fixed_ms + cost.per_item_ms * t * t) / 1000 * 0.99
