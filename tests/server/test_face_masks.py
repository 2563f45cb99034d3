"""Face masks over a real server: the mask models' flags, the mask options over real round
trips, and bad values refused as `bad_config` (graphs with the real models' signatures,
perf/synthetic_models.py)."""
from __future__ import annotations

import numpy as np
import pytest

from models.hub import ModelSettings
from models.registry import ModelError
from perf.synthetic_models import OCCLUDER_BGR, bisenet_like, family_like, xseg_like
from protocol import Config, ConfigConfirmation, Error, Frame, ProcessedFrame, SourceFace
from protocol.options import FACE_REGIONS
from server.cli import parse_config
from tests import media
from tests.server.wsclient import receive, send, send_json

TOM = media.insightface_image("Tom_Hanks_54745.png")
SWAPPER = "hyperswap_1a_256"
PATCH = (slice(222, 250), slice(399, 423))  # over the cheek of the group photo's first face
INSIDE = (slice(226, 246), slice(403, 419))  # well inside it, clear of JPEG's blur across its edge


def painted_frame() -> np.ndarray:
    frame = media.group_photo().copy()
    frame[PATCH] = OCCLUDER_BGR
    return frame


@pytest.fixture
def models_dir(tmp_path):
    family_like(tmp_path, SWAPPER)
    xseg_like(tmp_path / "xseg_1.onnx")
    bisenet_like(tmp_path / "bisenet_resnet_18.onnx")
    return tmp_path


async def configured(ws, **options) -> dict:
    await send_json(ws, Config(options=options))
    reply = await receive(ws)
    assert isinstance(reply, ConfigConfirmation), reply
    return reply.options


async def refused(ws, **options) -> str:
    await send_json(ws, Config(options=options))
    reply = await receive(ws)
    assert isinstance(reply, Error) and reply.code == "bad_config", reply
    return reply.message


async def swapped(ws, frame: np.ndarray, seq: int) -> np.ndarray:
    await send(ws, Frame(jpeg=media.jpeg(frame, 95), timestamp=float(seq), seq=seq), False)
    reply = await receive(ws)
    assert isinstance(reply, ProcessedFrame), reply
    return media.decode(reply.jpeg)


async def test_the_mask_options_work_over_a_real_round_trip(start_server, http, models_dir):
    server = await start_server(models=ModelSettings(models_dir=models_dir, face_occluder="xseg_1",
                                                     face_parser="bisenet_resnet_18"),
                                frame_processors=(SWAPPER,))
    async with http.get(server.make_url("/options")) as response:
        offered = {row["name"]: row for row in await response.json()}
    assert offered["face_mask_types"]["choices"] == ["box", "occlusion", "region"]
    assert offered["face_mask_types"]["default"] == ["box", "occlusion"]
    assert offered["face_mask_regions"]["default"] == list(FACE_REGIONS)
    frame = painted_frame()
    async with http.ws_connect(server.make_url("/")) as ws:
        assert (await configured(ws))["face_mask_types"] == ["box", "occlusion"]
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        assert (await receive(ws)).status == "success"
        await configured(ws, color_correction=False, smoothing=0)
        occluded = await swapped(ws, frame, 1)
        await configured(ws, face_mask_types=["box"])
        boxed = await swapped(ws, frame, 2)
        await configured(ws, face_mask_types=["region", "box"], face_mask_regions=["skin", "nose"],
                         face_mask_blur=0, face_mask_padding=5)
        regions = await swapped(ws, frame, 3)
        await configured(ws, face_mask_types=["box"], face_mask_padding=50)
        nothing = await swapped(ws, frame, 4)
        await configured(ws, opacity=0)
        untouched = await swapped(ws, frame, 5)  # no swap: the frame as the server's JPEG round trip gives it
        await configured(ws, opacity=1)
        for bad, field in (({"face_mask_regions": ["ears"]}, "face_mask_regions"),
                           ({"face_mask_blur": 2}, "face_mask_blur"), ({"face_mask_padding": 51}, "face_mask_padding"),
                           ({"face_mask_types": ["box", "box"]}, "face_mask_types"),
                           ({"face_mask_types": ["hands"]}, "face_mask_types")):
            assert field in await refused(ws, **bad, opacity=0.5)
        assert (await configured(ws))["opacity"] == 1.0, "a refused change changes nothing"

    def change(image: np.ndarray, where=INSIDE) -> float:
        return float(np.abs(image[where].astype(int) - untouched[where]).mean())

    face = (slice(184, 222), slice(371, 399))  # the rest of that face
    assert change(occluded) < 2.0 and change(occluded, face) > 10, "the occluder as it was, the face swapped"
    assert change(boxed) > 20, "without the occlusion mask the occluder is swapped over"
    assert np.array_equal(nothing, untouched), "padding 50 leaves every face as it was"
    assert abs(change(regions, face) - change(boxed, face)) > 0.5, "the region mask changes what is swapped"


async def test_masks_a_server_has_not_loaded_are_refused(start_server, http, models_dir):
    server = await start_server(models=ModelSettings(models_dir=models_dir), frame_processors=(SWAPPER,))
    async with http.ws_connect(server.make_url("/")) as ws:
        assert (await configured(ws))["face_mask_types"] == ["box"]
        message = await refused(ws, face_mask_types=["box", "occlusion"])
        assert "face_mask_types: must be a list of distinct values among box" in message
        assert "face_mask_types" in await refused(ws, face_mask_types=["region"])
        assert (await configured(ws, face_mask_types=[]))["face_mask_types"] == []


async def test_a_missing_mask_model_stops_the_server_at_start(start_server, models_dir):
    with pytest.raises(ModelError, match=r"model xseg_2 \(xseg_2.onnx\) not found.*python -m models fetch xseg_2"):
        await start_server(models=ModelSettings(models_dir=models_dir, face_occluder="xseg_2"),
                           frame_processors=(SWAPPER,))


def test_the_command_line_names_the_mask_models_and_their_defaults():
    config = parse_config(["--face-occluder", "many", "--face-parser", "bisenet_resnet_34", "--face-mask-regions",
                           "skin", "nose", "--face-mask-blur", "0.5", "--face-mask-padding", "10"])
    assert (config.models.face_occluder, config.models.face_parser) == ("many", "bisenet_resnet_34")
    assert {name: config.options[name] for name in ("face_mask_regions", "face_mask_blur", "face_mask_padding")} == {
        "face_mask_regions": ["skin", "nose"], "face_mask_blur": 0.5, "face_mask_padding": 10.0}
    assert "face_mask_types" not in config.options, "what a server offers follows from what it loads"
    defaults = parse_config([])
    assert (defaults.models.face_occluder, defaults.models.face_parser) == (None, None)
    assert defaults.options["face_mask_regions"] == list(FACE_REGIONS)
    for bad in (["--face-mask-blur", "2"], ["--face-occluder", "xseg_9"], ["--face-mask-regions", "ears"]):
        with pytest.raises(SystemExit):
            parse_config(bad)
