"""Pixel boost over a real server: the option offered, confirmed, refused when bad, and applied."""
from __future__ import annotations

import numpy as np
from models.hub import ModelHub, ModelSettings
from perf.synthetic_models import family_like
from protocol import Config, ConfigConfirmation, Error, Frame, ProcessedFrame, SourceFace
from protocol.options import DEFAULT_OPTIONS
from server.app import DEVICES
from tests import media
from tests.server.wsclient import receive, send, send_json

TOM = media.insightface_image("Tom_Hanks_54745.png")


async def swapped_frame(ws, seq: int) -> np.ndarray:
    await send(ws, Frame(jpeg=media.jpeg(media.group_photo()), timestamp=float(seq), seq=seq), False)
    reply = await receive(ws)
    assert isinstance(reply, ProcessedFrame), reply
    return media.decode(reply.jpeg)


async def test_a_client_boosts_its_swapper_over_a_real_round_trip(start_server, http, tmp_path):
    """`pixel_boost` "2x": confirmed, the model gets each face as four sub-images (24 items for
    the six faces instead of 6), the faces come out otherwise than at "1x", the background as
    it was; a value not among 1x..4x is `bad_config` and changes nothing."""
    family_like(tmp_path, "hyperswap_1a_256")
    server = await start_server(models=ModelSettings(models_dir=tmp_path), frame_processors=("hyperswap_1a_256",))
    async with http.get(server.make_url("/options")) as response:
        offered = {row["name"]: row for row in await response.json()}["pixel_boost"]
    assert (offered["choices"], offered["default"], offered["kind"]) == (["1x", "2x", "3x", "4x"], "1x", "choice")
    costs = server.app[DEVICES][0].model_device.costs
    outputs = {}
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        assert (await receive(ws)).status == "success"
        for seq, boost in enumerate(("1x", "2x"), 1):
            await send_json(ws, Config(options={"pixel_boost": boost, "smoothing": 0}))
            confirmation = await receive(ws)
            assert isinstance(confirmation, ConfigConfirmation) and confirmation.options["pixel_boost"] == boost
            outputs[boost] = await swapped_frame(ws, seq)
            items, _ = costs["hyperswap_1a_256"].samples[-1]
            assert items == 6 * int(boost[0]) ** 2, (boost, items)
        for bad in ("5x", 2, "2", None):
            await send_json(ws, Config(options={"opacity": 0.5, "pixel_boost": bad}))
            error = await receive(ws)
            assert isinstance(error, Error) and error.code == "bad_config", error
            assert "pixel_boost: must be one of 1x, 2x, 3x, 4x" in error.message
        await send_json(ws, Config(options={}))
        still = await receive(ws)
        assert (still.options["pixel_boost"], still.options["opacity"]) == ("2x", 1.0)

    original = media.decode(media.jpeg(media.group_photo()))
    boxes = [face.box for face in ModelHub(ModelSettings()).analyser.analyse([media.group_photo()], [True], False)[0]]
    for boost, output in outputs.items():
        faces, background = media.region_changes(original, output, boxes)
        assert min(faces) > 3.0 and background < 2.0, (boost, faces, background)
    faces, background = media.region_changes(outputs["1x"], outputs["2x"], boxes)
    assert min(faces) > 0.5 and background < 0.2, f"2x changes every face (finer resampling), nothing else: {faces}"
    assert max(faces) < 4.0, f"the same swap (this model works pixel by pixel), pasted at the same place: {faces}"


async def test_the_servers_default_boost_is_what_a_client_gets_without_config(start_server, http, tmp_path):
    """`--pixel-boost 3x` (the server's per-client defaults, `ServerConfig.options`) applies to a
    client that never sent a `config`."""
    family_like(tmp_path, "hyperswap_1a_256")
    server = await start_server(models=ModelSettings(models_dir=tmp_path), frame_processors=("hyperswap_1a_256",),
                                options={**DEFAULT_OPTIONS, "pixel_boost": "3x"})
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=TOM.read_bytes()))
        assert (await receive(ws)).status == "success"
        await swapped_frame(ws, 1)
    items, _ = server.app[DEVICES][0].model_device.costs["hyperswap_1a_256"].samples[-1]
    assert items == 6 * 9
