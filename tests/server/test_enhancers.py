"""Face enhancers through a real server: `--frame-processor classic codeformer` with the file
in the models directory as a graph with the real model's signature, each client's
`enhancer_blend` and `enhancer_weight`."""
from __future__ import annotations

from models.hub import ModelSettings
from perf.synthetic_models import enhancer_file_like
from protocol import Config, ConfigConfirmation, Error, SourceFace
from tests import media
from tests.server.test_face_swap import TOM, face_boxes, swapped_frame  # noqa: F401 (face_boxes: a fixture)
from tests.server.wsclient import receive, send_json


async def test_an_enhancer_by_name_restores_the_swapped_faces_by_each_clients_options(
        start_server, http, face_boxes, tmp_path):  # noqa: F811 (the fixture imported above)
    """Confirmed defaults (80, 0.5); bad values refused as `bad_config`, naming the field; a blend
    of 0 gives the swap alone, full blend changes every face and nothing else, and CodeFormer's
    fidelity changes the restored faces."""
    enhancer_file_like(tmp_path, "codeformer")
    server = await start_server(models=ModelSettings(models_dir=tmp_path), frame_processors=("classic", "codeformer"))
    choices = {"off": {"enhancer_blend": 0}, "faithful": {"enhancer_blend": 100, "enhancer_weight": 1},
               "restored": {"enhancer_blend": 100, "enhancer_weight": 0}}
    outputs = {}
    for label, options in choices.items():
        async with http.ws_connect(server.make_url("/")) as ws:
            await send_json(ws, Config(options={}))
            defaults = (await receive(ws)).options
            assert (defaults["enhancer_blend"], defaults["enhancer_weight"]) == (80, 0.5)
            for field, bad in (("enhancer_blend", 101), ("enhancer_weight", "high"), ("enhancer_weight", -0.1)):
                await send_json(ws, Config(options={field: bad}))
                error = await receive(ws)
                assert isinstance(error, Error) and error.code == "bad_config", error
                assert f"option {field}: must be a number from" in error.message, error
            await send_json(ws, Config(options=options))
            confirmed = await receive(ws)
            assert isinstance(confirmed, ConfigConfirmation)
            assert {name: confirmed.options[name] for name in options} == options
            await send_json(ws, SourceFace(image=TOM.read_bytes()))
            assert (await receive(ws)).status == "success"
            outputs[label] = await swapped_frame(ws)
    faces, background = media.region_changes(outputs["off"], outputs["faithful"], face_boxes)
    assert min(faces) > 3.0, f"every swapped face restored: {faces}"
    assert background < 1.0, f"and nothing else: {background}"
    by_weight, _ = media.region_changes(outputs["faithful"], outputs["restored"], face_boxes)
    assert min(by_weight) > 1.0, f"the fidelity weight reaches CodeFormer: {by_weight}"
