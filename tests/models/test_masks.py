"""Face masks (models/masks.py) against NumPy references written here from the published facts
of each mask, on graphs with the mask models' exact signatures (perf/synthetic_models.py:
an occluder that sees pure colours as occluders, a parser that labels pixels by colour)."""
from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from models.blend import MOUTH, keep_mouth
from models.face import SwapJob
from models.frame import FrameContext
from models.hub import ModelHub, ModelSettings
from models.masks import DEFAULT_BLUR, DEFAULT_PADDING, DEFAULT_TYPES, MASK_TYPES, REGION_LABELS, MaskJob, box_mask
from models.enhancer import EnhanceJob
from models.processors import FaceEnhancer, NeuralSwapper
from models.registry import ModelError
from models.simulated import COST_TABLES
from perf.synthetic_models import bisenet_like, enhancer_like, family_like, inswapper_like, parser_palette, xseg_like
from protocol.options import OPTIONS
from tests import media
from tests.models import published

SWAPPER = "hyperswap_1a_256"
NO_EXTRAS = {"color_correction": False, "smoothing": 0}
# The published facts: the face parser's labels of the regions a client may keep.
PUBLISHED_LABELS = {"skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5, "glasses": 6,
                    "nose": 10, "mouth": 11, "upper-lip": 12, "lower-lip": 13}
BLUE, RED = (255, 0, 0), (0, 0, 255)
PATCH = (slice(222, 250), slice(399, 423))  # over the cheek and mouth corner of the group photo's first face


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    family_like(directory, SWAPPER)
    xseg_like(directory / "xseg_1.onnx", BLUE)
    xseg_like(directory / "xseg_2.onnx", RED)
    xseg_like(directory / "xseg_3.onnx", (0, 255, 0))
    bisenet_like(directory / "bisenet_resnet_18.onnx")
    return directory


def mask_hub(models_dir, occluder: str | None = "xseg_1", parser: str | None = "bisenet_resnet_18") -> ModelHub:
    return ModelHub(ModelSettings(models_dir=models_dir, face_occluder=occluder, face_parser=parser))


@pytest.fixture(scope="module")
def swapper(models_dir):
    return NeuralSwapper(mask_hub(models_dir), SWAPPER, name=SWAPPER)


@pytest.fixture(scope="module")
def source(swapper):
    return swapper.prepare_source(cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png"))))


def painted(*patches: tuple[tuple[slice, slice], tuple[int, int, int]]) -> np.ndarray:
    frame = media.group_photo().copy()
    for where, colour in patches:
        frame[where] = colour
    return frame


# The references, from the published facts.


def ramp(mask: np.ndarray, size: int) -> np.ndarray:
    """Resized to the crop, Gaussian blur sigma 5, then (clip(m, 0.5, 1) - 0.5) * 2."""
    mask = np.clip(cv2.resize(mask.astype(np.float32), (size, size)), 0, 1)
    return (np.clip(cv2.GaussianBlur(mask, (0, 0), 5), 0.5, 1) - 0.5) * 2


def reference_occlusion(models_dir, occluders: list[str], frame: np.ndarray, matrix: np.ndarray,
                        size: int) -> np.ndarray:
    """The target's crop at 256 px (the swap's matrix scaled), NHWC BGR / 255; the minimum of
    the occluders' outputs [0][0] (256, 256, 1)."""
    crop = cv2.warpAffine(frame, matrix * (256 / size), (256, 256), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)
    blob = (crop.astype(np.float32) / 255)[None]
    outputs = [ort.InferenceSession(str(models_dir / f"{name}.onnx")).run(None, {"input": blob})[0][0]
               for name in occluders]
    return ramp(np.minimum.reduce(outputs)[..., 0], size)


def reference_region(models_dir, crop: np.ndarray, regions: list[str]) -> np.ndarray:
    """The swapped crop at 512 px, RGB / 255, ImageNet mean / std, NCHW; argmax of the 19 scores
    of output [0][0], kept where it is one of the regions' labels."""
    rgb = cv2.resize(crop, (512, 512))[..., ::-1] / 255.0
    blob = ((rgb - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)).transpose(2, 0, 1)[None].astype(np.float32)
    scores = ort.InferenceSession(str(models_dir / "bisenet_resnet_18.onnx")).run(None, {"input": blob})[0][0]
    kept = np.isin(scores.argmax(0), [PUBLISHED_LABELS[name] for name in regions])
    return ramp(kept.astype(np.float32), crop.shape[0])


def swapped_crops(swapper, source, frame: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    faces = swapper.analyser.analyse([frame], [True], False)[0]
    assert len(faces) == 6
    name = swapper.name
    return swapper.models[name].generate([frame], [SwapJob(0, face, source.identities[name]) for face in faces])


# The tests.

def test_the_options_table_and_the_masks_name_the_same_things():
    assert OPTIONS["face_mask_types"].choices == MASK_TYPES
    assert OPTIONS["face_mask_types"].default == DEFAULT_TYPES
    assert REGION_LABELS == PUBLISHED_LABELS
    assert OPTIONS["face_mask_regions"].choices == tuple(REGION_LABELS) == OPTIONS["face_mask_regions"].default
    assert (OPTIONS["face_mask_blur"].default, OPTIONS["face_mask_padding"].default) == (DEFAULT_BLUR, DEFAULT_PADDING)


def test_the_models_defaults_are_the_options_tables():
    """models/ imports nothing of ours, so it names the options' defaults itself: held to the table here."""
    from models import enhancer, pixel_boost

    assert (OPTIONS["enhancer_blend"].default, OPTIONS["enhancer_weight"].default) == (enhancer.DEFAULT_BLEND,
                                                                                       enhancer.DEFAULT_WEIGHT)
    assert OPTIONS["pixel_boost"].default == pixel_boost.DEFAULT


@pytest.mark.parametrize("size", [128, 256, 512])
@pytest.mark.parametrize("blur, padding", [(0.3, 0), (0, 0), (0.5, 10), (1, 0), (0.1, 25)])
def test_the_box_mask_is_the_published_one(size, blur, padding):
    assert np.allclose(box_mask(size, blur, padding), published.box_mask(size, blur, padding), atol=1e-6)


def test_box_blur_and_padding_change_what_is_swapped(swapper, source):
    frame = media.group_photo()

    def swap(**options) -> np.ndarray:
        return swapper.process([frame.copy()], [FrameContext(sources={SWAPPER: source},
                                                             options={**NO_EXTRAS, "face_mask_types": ["box"],
                                                                      **options})])[0]

    assert np.array_equal(swap(face_mask_padding=50), frame), "a margin of half the crop on every side leaves nothing"
    hard, soft, padded = swap(face_mask_blur=0), swap(face_mask_blur=1), swap(face_mask_padding=20)
    change = [np.abs(output.astype(int) - frame).sum() for output in (hard, soft, padded)]
    assert change[0] > 1.5 * change[1] > 0 and change[0] > 1.5 * change[2] > 0, change


@pytest.mark.parametrize("occluder, model", [("xseg_1", "inswapper_128"), ("many", SWAPPER)])
def test_each_mask_is_its_published_reference_and_they_combine_by_their_minimum(models_dir, occluder, model):
    """On a 128 px crop (inswapper) and a 256 px one (hyperswap): masks at the models' own sizes."""
    hub = mask_hub(models_dir, occluder)
    swapper = (NeuralSwapper(hub, model_path=inswapper_like(models_dir / "inswapper_128.onnx"))
               if model == "inswapper_128" else NeuralSwapper(hub, model, name=model))
    source = swapper.prepare_source(cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png"))))
    frame = painted((PATCH, BLUE), ((slice(150, 170), slice(255, 275)), RED))  # xseg_2 sees red
    fakes, matrices = swapped_crops(swapper, source, frame)
    regions = ["left-eyebrow", "upper-lip", "nose"]
    options = {"face_mask_types": ["box", "occlusion", "region"], "face_mask_blur": 0.4, "face_mask_padding": 5,
               "face_mask_regions": regions}
    combined = swapper.masker.masks([MaskJob(frame, matrix, fake, options) for fake, matrix in zip(fakes, matrices)])
    alone = {kind: swapper.masker.masks([MaskJob(frame, matrix, fake, {**options, "face_mask_types": [kind]})
                                         for fake, matrix in zip(fakes, matrices)]) for kind in MASK_TYPES}
    occluders = ["xseg_1", "xseg_2", "xseg_3"] if occluder == "many" else [occluder]
    for index, (fake, matrix) in enumerate(zip(fakes, matrices)):
        size = fake.shape[0]
        expected = {"box": published.box_mask(size, 0.4, 5),
                    "occlusion": reference_occlusion(models_dir, occluders, frame, matrix, size),
                    "region": reference_region(models_dir, fake, regions)}
        for kind in MASK_TYPES:
            assert np.allclose(alone[kind][index], expected[kind], atol=1e-5), (kind, index)
        assert np.allclose(combined[index], np.minimum.reduce(list(expected.values())), atol=1e-5)
    occlusion = [reference_occlusion(models_dir, occluders, frame, m, f.shape[0]) for f, m in zip(fakes, matrices)]
    assert min(mask.min() for mask in occlusion) == 0.0, "the painted occluders are seen"
    if occluder == "many":
        first = [reference_occlusion(models_dir, ["xseg_1"], frame, m, f.shape[0]) for f, m in zip(fakes, matrices)]
        assert any(not np.array_equal(a, b) for a, b in zip(first, occlusion)), "xseg_2 sees the red patch, xseg_1 not"
    region = reference_region(models_dir, fakes[0], regions)
    assert 0.1 < region.mean() < 0.9, "some of the face is kept, not all"


def test_an_occluder_over_a_face_is_left_exactly_as_it_was_and_the_rest_is_swapped(swapper, source):
    frame = painted((PATCH, BLUE))

    def swap(types: list[str]) -> np.ndarray:
        context = FrameContext(sources={SWAPPER: source}, options={**NO_EXTRAS, "face_mask_types": types})
        return swapper.process([frame.copy()], [context])[0]

    boxed, occluded = swap(["box"]), swap(["box", "occlusion"])
    inside = np.zeros(frame.shape[:2], bool)
    inside[PATCH] = True
    well_inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.array_equal(occluded[well_inside], frame[well_inside]), "the occluder's pixels are as they were"
    assert np.abs(boxed[well_inside].astype(int) - frame[well_inside]).mean() > 20, "without it they are swapped"
    away = ~cv2.dilate(inside.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)
    assert np.abs(occluded[away].astype(int) - boxed[away]).max() <= 1, "away from the occluder, the same swap"
    x1, y1, x2, y2 = 371, 184, 399, 222  # the rest of that face
    rest = np.abs(occluded[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2]).mean()
    assert rest > 20, "the rest of the face is swapped"


def test_the_region_mask_keeps_only_the_chosen_regions(swapper):
    """A crop painted in the parser's palette colours: the chosen labels are kept, the others not."""
    palette = np.round(parser_palette()[:, ::-1] * 255).astype(np.uint8)  # BGR
    crop = np.empty((256, 256, 3), np.uint8)
    quarters = {"skin": (slice(0, 128), slice(0, 128)), "nose": (slice(0, 128), slice(128, 256)),
                "lower-lip": (slice(128, 256), slice(0, 128)), "hair": (slice(128, 256), slice(128, 256))}
    labels = {**PUBLISHED_LABELS, "hair": 17}
    for name, where in quarters.items():
        crop[where] = palette[labels[name]]
    job = MaskJob(media.group_photo(), np.eye(2, 3), crop,
                  {"face_mask_types": ["region"], "face_mask_regions": ["skin", "lower-lip"]})
    mask = swapper.masker.masks([job])[0]
    core = (slice(40, 88), slice(40, 88))  # the middle of a quarter, far from its edges
    centre = {name: mask[where][core].mean() for name, where in quarters.items()}
    assert centre == {"skin": 1.0, "nose": 0.0, "lower-lip": 1.0, "hair": 0.0}, centre


def test_the_mouth_mask_is_one_more_mask_in_the_minimum():
    landmarks = np.zeros((106, 2), np.float32)
    angles = np.linspace(0, 2 * np.pi, MOUTH.stop - MOUTH.start, endpoint=False)
    landmarks[MOUTH] = np.column_stack([60 + 20 * np.cos(angles), 60 + 8 * np.sin(angles)])
    mask = np.tile(np.linspace(0.2, 1.0, 120, dtype=np.float32), (120, 1))
    cut = keep_mouth(np.ones_like(mask), landmarks, 0.5)
    assert cut.min() < 1e-6 and np.any((cut > 0.05) & (cut < 0.95) & (mask < 0.9)), "a soft cut over a soft mask"
    assert np.allclose(keep_mouth(mask, landmarks, 0.5), np.minimum(mask, cut)), "the minimum, not the product"


def test_a_batch_of_clients_with_different_mask_options_is_each_as_alone(swapper, source):
    frame = painted((PATCH, BLUE))
    options = [{"face_mask_types": ["box", "occlusion"], "face_mask_blur": 0.6},
               {"face_mask_types": ["box", "region"], "face_mask_regions": ["left-eyebrow", "upper-lip"],
                "face_mask_padding": 10},
               {"face_mask_types": [], "mouth_mask": 40},
               {}]  # the server's defaults: box and occlusion
    contexts = [FrameContext(client_id=i, sources={SWAPPER: source}, options={**NO_EXTRAS, **chosen})
                for i, chosen in enumerate(options)]
    together = swapper.process([frame.copy() for _ in options], contexts)
    for chosen, output in zip(options, together):
        alone = swapper.process([frame.copy()], [FrameContext(sources={SWAPPER: source},
                                                              options={**NO_EXTRAS, **chosen})])[0]
        assert np.array_equal(output, alone), chosen
    assert len({output.tobytes() for output in together}) == len(options), "each client's options make a difference"


def test_the_server_offers_the_masks_it_loaded_and_refuses_others(models_dir, source):
    assert NeuralSwapper(mask_hub(models_dir, None, None), SWAPPER, name=SWAPPER).option_choices["face_mask_types"] == (
        "box",)
    occluding = NeuralSwapper(mask_hub(models_dir, "xseg_2", None), SWAPPER, name=SWAPPER)
    assert occluding.option_choices["face_mask_types"] == ("box", "occlusion")
    assert occluding.masker.chosen({}) == ("box", "occlusion")
    with pytest.raises(ValueError, match="face_mask_types: region not computed here"):
        occluding.masker.chosen({"face_mask_types": ["box", "region"]})


def test_a_missing_or_wrong_mask_file_is_refused_at_start(models_dir, tmp_path):
    family_like(tmp_path, SWAPPER)
    for name in ("xseg_1", "xseg_2"):
        xseg_like(tmp_path / f"{name}.onnx")
    with pytest.raises(ModelError, match=r"model xseg_3 \(xseg_3.onnx\) not found.*python -m models fetch xseg_3"):
        NeuralSwapper(ModelHub(ModelSettings(models_dir=tmp_path, face_occluder="many")), SWAPPER, name=SWAPPER)
    bisenet_like(tmp_path / "xseg_1.onnx")  # a parser under an occluder's name, in its place
    with pytest.raises(ModelError, match=r"xseg_1: inputs input \[.*, 3, 512, 512\].* takes input \(N, 256, 256, 3\)"):
        NeuralSwapper(ModelHub(ModelSettings(models_dir=tmp_path, face_occluder="xseg_1")), SWAPPER, name=SWAPPER)


def test_mask_models_on_the_simulated_device_hide_nothing_and_parse_a_face(models_dir, source, swapper):
    assert all({"xseg_1", "xseg_2", "xseg_3", "bisenet_resnet_18", "bisenet_resnet_34"} <= table.keys()
               for table in COST_TABLES.values())
    simulated = ModelHub(ModelSettings(provider="simulated", models_dir=models_dir, face_occluder="many",
                                       face_parser="bisenet_resnet_18")).masker
    frame = painted((PATCH, BLUE))
    fakes, matrices = swapped_crops(swapper, source, frame)
    jobs = [MaskJob(frame, matrix, fake, {"face_mask_types": ["occlusion"]}) for fake, matrix in zip(fakes, matrices)]
    assert all(mask.min() > 0.999 for mask in simulated.masks(jobs)), "all visible: the occluders hide nothing"
    parsed = simulated.masks([MaskJob(frame, m, f, {"face_mask_types": ["region"]}) for f, m in zip(fakes, matrices)])
    for mask in parsed:
        size = mask.shape[0]
        assert mask[size // 2, size // 2] == 1.0 and mask[0, 0] == 0.0 and 0.2 < mask.mean() < 0.7
    eyes = simulated.masks([MaskJob(frame, matrices[0], fakes[0], {"face_mask_types": ["region"],
                                                                  "face_mask_regions": ["left-eye", "right-eye"]})])[0]
    assert 0.0 < eyes.mean() < parsed[0].mean() / 5, "a region choice keeps its part of the drawn face"


def test_the_enhancer_pastes_through_the_same_masks(models_dir, swapper):
    """A restored face goes back through its client's masks too: an occluder over it stays
    exactly as it was with occlusion chosen, and is restored over without it."""
    enhancer_like(models_dir / "gpen_bfr_512.onnx", 512, False)
    enhancer = FaceEnhancer(mask_hub(models_dir), "gpen_bfr_512", name="gpen_bfr_512")
    assert enhancer.option_choices == {"face_mask_types": ("box", "occlusion")}  # the regions are the swap's
    # Whatever the swap's masks, the restored square fades out through the box (the client's blur,
    # no padding), and a chosen occlusion applies to it too.
    assert enhancer._mask_options({"face_mask_types": [], "face_mask_padding": 20, "face_mask_blur": 0.5}) == {
        "face_mask_types": ["box"], "face_mask_blur": 0.5, "face_mask_padding": 0.0}
    assert enhancer._mask_options({"face_mask_types": ["occlusion", "region"]})["face_mask_types"] == ["box", "occlusion"]
    frame = painted((PATCH, BLUE))
    faces = swapper.analyser.analyse([frame], [True], False)[0]

    def enhanced(types: list[str]) -> np.ndarray:
        image = frame.copy()
        enhancer.enhancer.enhance([EnhanceJob(image, face, blend=1.0, options={"face_mask_types": types})
                                   for face in faces])
        return image

    inside = np.zeros(frame.shape[:2], bool)
    inside[PATCH] = True
    well_inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.array_equal(enhanced(["box", "occlusion"])[well_inside], frame[well_inside])
    assert np.abs(enhanced(["box"])[well_inside].astype(int) - frame[well_inside]).mean() > 5
