"""Real face swaps through a real server: the embedded default pipeline, options, source errors."""
from __future__ import annotations

import numpy as np
import pytest

from models.options import DEFAULT_OPTIONS
from models.processors import ModelHub, ModelSettings
from protocol import Config, ConfigConfirmation, Error, Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation
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
        assert set(confirmation.options) == set(DEFAULT_OPTIONS)
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
