"""Real face swaps through a real server: the embedded default pipeline, options, source errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from models.hub import ModelHub, ModelSettings
from protocol import (
    Config,
    ConfigConfirmation,
    Error,
    FaceMap,
    FaceMapConfirmation,
    FacePair,
    Frame,
    ProcessedFrame,
    SourceFace,
    SourceFaceConfirmation,
)
from perf.synthetic_models import family_like
from protocol.options import DEFAULT_OPTIONS
from tests import media
from tests.server.wsclient import receive, send, send_json

TOM = media.insightface_image("Tom_Hanks_54745.png")


@pytest.fixture(scope="module")
def face_boxes() -> list[np.ndarray]:
    faces = ModelHub(ModelSettings()).analyser.analyse([media.group_photo()], [True], False)[0]
    assert len(faces) == 6
    return [face.box for face in faces]


async def swapped_frame(ws, binary: bool = False, seq: int = 1) -> np.ndarray:
    await send(ws, Frame(jpeg=media.jpeg(media.group_photo()), timestamp=1.0, seq=seq), binary)
    reply = await receive(ws)
    assert isinstance(reply, ProcessedFrame), reply
    return media.decode(reply.jpeg)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_default_server_swaps_all_six_faces_and_nothing_else(start_server, http, face_boxes, binary):
    server = await start_server(frame_processors=("classic",))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        confirmation = await receive(ws)
        assert confirmation.status == "success", confirmation
        output = await swapped_frame(ws, binary)
    original = media.decode(media.jpeg(media.group_photo()))
    faces, background = media.region_changes(original, output, face_boxes)
    assert min(faces) > 8.0, f"every face must change: {faces}"
    assert background < 2.0, f"the background must not: {background}"


async def test_options_change_what_is_swapped(start_server, http, face_boxes):
    server = await start_server(frame_processors=("classic",))
    original = media.decode(media.jpeg(media.group_photo()))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        await receive(ws)
        await send_json(ws, Config(options={"many_faces": False}))
        confirmation = await receive(ws)
        assert isinstance(confirmation, ConfigConfirmation) and confirmation.options["many_faces"] is False
        # The classic server offers "classic" as its swapper, and not the options only neural swappers read.
        assert set(confirmation.options) == {*DEFAULT_OPTIONS, "swapper"} - {"pixel_boost", "face_mask_blur",
                                                                            "face_mask_padding", "face_mask_regions",
                                                                            "enhancer_blend", "enhancer_weight"}
        faces, _ = media.region_changes(original, await swapped_frame(ws, seq=2), face_boxes)
        assert sum(change > 8.0 for change in faces) == 1, faces

        await send_json(ws, Config(options={"many_faces": True, "opacity": 0}))
        await receive(ws)
        faces, _ = media.region_changes(original, await swapped_frame(ws, seq=3), face_boxes)
        assert max(faces) < 2.0, "opacity 0 switches the swap off"

        await send_json(ws, Config(options={"opacity": 0.5, "mouth_mask": 60, "color_correction": False}))
        assert (await receive(ws)).options["mouth_mask"] == 60
        half, _ = media.region_changes(original, await swapped_frame(ws, seq=4), face_boxes)
        assert min(half) > 2.0


@pytest.mark.parametrize(
    "options, field",
    [({"opacity": 2}, "opacity"), ({"many_faces": "yes"}, "many_faces"), ({"teleport": 1}, "teleport"),
     ({"mouth_mask": -1}, "mouth_mask")],
)
async def test_bad_config_names_the_field_and_changes_nothing(start_server, http, options, field):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, Config(options={"opacity": 0.7, **options}))
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "bad_config" and field in error.message
        await send_json(ws, Config(options={}))
        assert (await receive(ws)).options["opacity"] == 1.0


async def test_source_without_a_face_is_refused_and_frames_pass_through(start_server, http, face_boxes):
    server = await start_server(frame_processors=("classic",))
    wall = media.jpeg(np.full((240, 320, 3), 90, np.uint8))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=wall))
        confirmation = await receive(ws)
        assert confirmation == SourceFaceConfirmation(status="error", message=confirmation.message)
        assert "No face" in confirmation.message
        output = await swapped_frame(ws)
    faces, _ = media.region_changes(media.decode(media.jpeg(media.group_photo())), output, face_boxes)
    assert max(faces) < 2.0


async def test_several_faces_in_the_source_uses_the_largest_and_says_so(start_server, http):
    server = await start_server(frame_processors=("classic",))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=media.jpeg(media.group_photo())))
        confirmation = await receive(ws)
        assert confirmation.status == "success" and "6 faces" in confirmation.message


async def test_default_source_face_from_the_command_line(start_server, http, face_boxes):
    server = await start_server(frame_processors=("face_swapper",), source=TOM)
    async with http.ws_connect(server.make_url("/")) as ws:
        faces, _ = media.region_changes(media.decode(media.jpeg(media.group_photo())), await swapped_frame(ws), face_boxes)
    assert min(faces) > 8.0


async def test_mirror_sharpness_and_blend_over_a_real_round_trip(start_server, http, face_boxes):
    server = await start_server(frame_processors=("classic",))
    original = media.decode(media.jpeg(media.group_photo()))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        await receive(ws)

        async def with_options(seq: int, **options) -> np.ndarray:
            await send_json(ws, Config(options=options))
            assert isinstance(await receive(ws), ConfigConfirmation)
            return await swapped_frame(ws, seq=seq)

        mirrored = await with_options(1, mirror=True, opacity=0)
        assert np.abs(mirrored.astype(np.int16) - original[:, ::-1]).mean() < 2.0
        plain = await with_options(2, mirror=False, opacity=1.0, sharpness=0, blend="feather")
        sharp = await with_options(3, sharpness=5)
        poisson = await with_options(4, sharpness=0, blend="poisson")

    def detail(image: np.ndarray) -> float:
        return float(np.mean([cv2.Laplacian(image[int(y1):int(y2), int(x1):int(x2)], cv2.CV_64F).var()
                              for x1, y1, x2, y2 in face_boxes]))

    assert detail(sharp) > 1.3 * detail(plain)
    faces, background = media.region_changes(plain, poisson, face_boxes)
    assert np.mean(faces) > 1.0 and background < 1.0, "poisson blending changes the faces only"


async def test_face_map_routes_two_sources_to_two_people(start_server, http, face_boxes):
    """Tom Hanks onto one person of t1.jpg, the astronaut onto another, the rest left alone."""
    from models.recognizer import cosine

    analyser = ModelHub(ModelSettings()).analyser
    group = media.group_photo()
    first, second = face_boxes[0], face_boxes[3]

    def crop(box: np.ndarray) -> bytes:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        return media.jpeg(group[max(0, int(y1 - h)):int(y2 + h), max(0, int(x1 - w)):int(x2 + w)])

    astronaut = media.jpeg(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    server = await start_server(frame_processors=("classic",))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, FaceMap(pairs=(FacePair(TOM.read_bytes(), crop(first)), FacePair(astronaut, crop(second)))))
        confirmation = await receive(ws)
        assert isinstance(confirmation, FaceMapConfirmation) and confirmation.status == "success", confirmation
        output = await swapped_frame(ws)
        await send_json(ws, FaceMap(pairs=(FacePair(TOM.read_bytes(), media.jpeg(np.full((200, 200, 3), 90, np.uint8))),)))
        refused = await receive(ws)
        assert refused.status == "error" and "No face" in refused.pairs[0].message

    original = media.decode(media.jpeg(group))
    changes, background = media.region_changes(original, output, face_boxes)
    assert changes[0] > 8 and changes[3] > 8 and background < 2
    assert sum(change > 8 for change in changes) == 2, f"only the two mapped people change: {changes}"
    sources = [analyser.source_face(cv2.imread(str(TOM))).face.embedding,
               analyser.source_face(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)).face.embedding]
    faces = analyser.analyse([output], [True], False)[0]
    analyser.recognizer.annotate([output], [faces])
    for box, own, other in ((first, sources[0], sources[1]), (second, sources[1], sources[0])):
        face = min(faces, key=lambda f: np.abs(f.box - box).sum())
        assert cosine(face.embedding, own) > cosine(face.embedding, other)


async def test_mit_only_pipeline_swaps_with_centerface_alone(start_server, http, face_boxes):
    """--detector centerface: no InsightFace weights are loaded, and faces are still swapped."""
    from server.app import DEVICES

    server = await start_server(frame_processors=("face_swapper",), models=ModelSettings(detector="centerface"))
    from models.centerface import CenterFaceDetector

    analyser = server.app[DEVICES][0].pipeline.processors[0].analyser
    assert isinstance(analyser.detector, CenterFaceDetector)
    assert analyser.landmarks is None and analyser.recognizer is None
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        assert (await receive(ws)).status == "success"
        output = await swapped_frame(ws)
        await send_json(ws, FaceMap(pairs=(FacePair(TOM.read_bytes(), TOM.read_bytes()),)))
        refused = await receive(ws)
        assert isinstance(refused, FaceMapConfirmation) and refused.status == "error"
        assert "recognizer" in refused.message
    faces, background = media.region_changes(media.decode(media.jpeg(media.group_photo())), output, face_boxes)
    assert min(faces) > 8.0 and background < 2.0


async def test_map_unmatched_default_gives_everyone_else_the_source_face(start_server, http, face_boxes):
    group = media.group_photo()
    x1, y1, x2, y2 = face_boxes[0]
    w, h = x2 - x1, y2 - y1
    target = media.jpeg(group[max(0, int(y1 - h)):int(y2 + h), max(0, int(x1 - w)):int(x2 + w)])
    astronaut = media.jpeg(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    server = await start_server(frame_processors=("classic",))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=astronaut))
        await receive(ws)
        await send_json(ws, FaceMap(pairs=(FacePair(TOM.read_bytes(), target),)))
        assert (await receive(ws)).status == "success"
        await send_json(ws, Config(options={"map_unmatched": "default", "smoothing": 0}))
        assert (await receive(ws)).options["map_unmatched"] == "default"
        output = await swapped_frame(ws)
    changes, _ = media.region_changes(media.decode(media.jpeg(group)), output, face_boxes)
    assert min(changes) > 8, f"the mapped person and everyone else are swapped: {changes}"


@pytest.mark.parametrize("family_file", ["hyperswap_1a_256", "ghost_1_256", "blendswap_256"])
async def test_a_swapper_family_by_name_swaps_over_a_real_round_trip(start_server, http, face_boxes, tmp_path,
                                                                     family_file):
    """`--frame-processor FILE` with the file (and its converter) in the models directory, as
    graphs with the real models' signatures: every face swapped, the background left alone; the
    identity by embedding, by converter and by source crop alike."""
    family_like(tmp_path, family_file)
    server = await start_server(models=ModelSettings(models_dir=tmp_path), frame_processors=(family_file,))
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        assert (await receive(ws)).status == "success"
        output = await swapped_frame(ws)
    original = media.decode(media.jpeg(media.group_photo()))
    faces, background = media.region_changes(original, output, face_boxes)
    assert min(faces) > 3.0, f"every face must change: {faces}"
    assert background < 2.0, f"the background must not: {background}"


async def test_each_client_chooses_among_the_servers_swappers(start_server, http, tmp_path):
    """`--frame-processor hyperswap_1a_256 ghost_1_256`: GET /options offers both (the first is
    the default), a client's `config` picks one, one the server has not loaded is `bad_config`."""
    for name in ("hyperswap_1a_256", "ghost_1_256"):
        family_like(tmp_path, name)
    server = await start_server(models=ModelSettings(models_dir=tmp_path),
                                frame_processors=("hyperswap_1a_256", "ghost_1_256"))
    async with http.get(server.make_url("/options")) as response:
        offered = {row["name"]: row for row in await response.json()}["swapper"]
    assert (offered["choices"], offered["default"]) == (["hyperswap_1a_256", "ghost_1_256"], "hyperswap_1a_256")
    assert offered["notes"]["ghost_1_256"] == "Apache-2.0 (ai-forever, 2022)", "each choice with its licence"
    outputs = {}
    for choice in ("hyperswap_1a_256", "ghost_1_256"):
        async with http.ws_connect(server.make_url("/")) as ws:
            await send_json(ws, Config(options={}))
            assert (await receive(ws)).options["swapper"] == "hyperswap_1a_256"
            await send_json(ws, Config(options={"swapper": "simswap_256"}))
            error = await receive(ws)
            assert isinstance(error, Error) and error.code == "bad_config", error
            assert "swapper: must be one of hyperswap_1a_256, ghost_1_256" in error.message
            await send_json(ws, Config(options={"swapper": choice}))
            assert (await receive(ws)).options["swapper"] == choice
            await send_json(ws, SourceFace(image=TOM.read_bytes()))
            assert (await receive(ws)).status == "success"
            outputs[choice] = await swapped_frame(ws)
    assert np.abs(outputs["hyperswap_1a_256"].astype(int) - outputs["ghost_1_256"]).mean() > 0.5


async def test_an_option_no_processor_of_the_server_reads_is_refused(start_server, http):
    """A classic server has no pixel boost and no enhancer: GET /options leaves them out, and a
    client asking for them is told so (bad_config), instead of a setting that silently does nothing."""
    server = await start_server(frame_processors=("classic",))
    async with http.get(server.make_url("/options")) as response:
        offered = {row["name"] for row in await response.json()}
    assert "many_faces" in offered and not offered & {"pixel_boost", "enhancer_blend", "face_mask_padding"}
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, Config(options={"pixel_boost": "2x"}))
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "bad_config", error
        assert "pixel_boost: not offered by this server" in error.message
