"""Live controls: command-line starting values, and every key of the window, against a real server.

Keys go through `StreamClient.press`, the function the window's key pump calls; what the
server confirms is what the overlay shows.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from client.cli import parse_config
from client.config import ClientConfig
from client.connection import StreamClient
from client.controls import CONTROLS, HELP_KEY, KEYS, STATS_KEY, LiveControls
from client.display import Display
from client.sources import SyntheticSource
from protocol import Config, StatsRequest
from protocol.options import OPTIONS
from server.app import SESSIONS
from tests.client.conftest import PASSTHROUGH, until, ws_url


def test_every_control_has_its_own_keys_and_a_known_option():
    assert len(KEYS) == sum(len(control.keys) for control in CONTROLS)
    assert {control.option for control in CONTROLS} <= set(OPTIONS)
    assert not {HELP_KEY, STATS_KEY, "q"} & set(KEYS)


def test_option_flags_set_the_starting_values(face_path):
    config = parse_config(["-s", str(face_path), "--no-many-faces", "--mouth-mask", "30", "--opacity", "0.5",
                           "--color-correction", "--smoothing", "0"])
    assert config.options == {"many_faces": False, "mouth_mask": 30.0, "opacity": 0.5, "color_correction": True,
                              "smoothing": 0.0}
    assert parse_config(["-s", str(face_path)]).options == {}  # unset: the server's defaults


def test_mask_flags_set_the_starting_masks(face_path):
    config = parse_config(["-s", str(face_path), "--face-mask-types", "box", "occlusion", "--face-mask-regions", "skin",
                           "nose", "--face-mask-blur", "0.5", "--face-mask-padding", "10"])
    assert config.options == {"face_mask_types": ["box", "occlusion"], "face_mask_regions": ["skin", "nose"],
                              "face_mask_blur": 0.5, "face_mask_padding": 10.0}


@pytest.mark.parametrize("bad", [["--opacity", "1.5"], ["--mouth-mask", "-1"], ["--smoothing", "nan"],
                                 ["--face-mask-blur", "2"]])
def test_option_flags_out_of_range_are_usage_errors(face_path, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-s", str(face_path), *bad])
    assert exit_info.value.code == 2 and bad[0] in capsys.readouterr().err


def test_keys_before_the_server_confirmed_anything_send_nothing():
    controls = LiveControls({})
    assert controls.press("f") is None and "not connected" in controls.note
    assert controls.press("x") is None  # not a control key
    assert controls.press(STATS_KEY) == StatsRequest()
    assert controls.press(HELP_KEY) is None and controls.show_help
    assert any(line.startswith("f  ") for line in controls.overlay_lines())


def test_refused_starting_options_fall_back_to_the_servers_defaults():
    controls = LiveControls({"opacity": 0.5, "mirror": True})
    assert controls.on_connect() == Config(options={"opacity": 0.5, "mirror": True})
    follow_up = controls.refused("option mirror: unknown option; nothing was changed")
    assert follow_up == Config(options={})  # asks what is in effect, so the overlay can show it
    assert controls.wanted == {} and "refused: option mirror" in controls.note
    controls.confirmed({"opacity": 1.0})
    assert controls.overlay_lines()[0] == "opacity 1"


# (key, option, value after the press, as the overlay shows it); each changes the value.
STEPS = [
    ("f", "many_faces", False, "many faces off"),
    ("m", "mouth_mask", 0, "mouth 0"),
    ("m", "mouth_mask", 20, "mouth 20"),  # back on: to the value it had
    ("-", "opacity", 0.9, "opacity 0.9"),
    ("=", "opacity", 1.0, "opacity 1"),
    ("-", "opacity", 0.9, "opacity 0.9"),
    ("+", "opacity", 1.0, "opacity 1"),
    ("s", "opacity", 0, "opacity 0"),  # swap off
    ("s", "opacity", 1.0, "opacity 1"),
    ("c", "color_correction", False, "colour off"),
    ("]", "smoothing", 2, "smoothing 2"),
    ("[", "smoothing", 1, "smoothing 1"),
    ("f", "many_faces", True, "many faces on"),
]


async def test_each_control_key_sends_its_config_and_the_confirmation_updates_the_overlay(
        start_server, face_path, caplog):
    caplog.set_level(logging.INFO, logger="client")
    server = await start_server(**PASSTHROUGH)
    config = ClientConfig(source=face_path, server_url=ws_url(server), synthetic=True, width=160, height=120,
                          headless=True, options={"mouth_mask": 20.0})
    client = StreamClient(config, SyntheticSource(160, 120), Display(headless=True), face_path.read_bytes())
    run = asyncio.create_task(client.run())
    try:
        await until(lambda: client.controls.effective is not None, what="the confirmation of the starting options")
        [session] = server.app[SESSIONS]
        assert session.core.options["mouth_mask"] == 20  # the command line's starting value, sent after the source face
        for key, option, value, shown in STEPS:
            await client.press(key)
            await until(lambda option=option, value=value: client.controls.effective[option] == value,
                        what=f"key {key!r}: {option} {value}")
            assert session.core.options[option] == value, key
            lines = client.presenter.overlay_lines()
            assert any(shown in line for line in lines), (key, lines)
        tested = {option for _, option, _, _ in STEPS}
        assert tested | {"mirror"} == {control.option for control in CONTROLS}
        if "mirror" in client.controls.effective:  # a server that has the option
            mirrored = not client.controls.effective["mirror"]
            await client.press("r")
            await until(lambda: client.controls.effective["mirror"] == mirrored, what="key 'r'")
        else:
            await client.press("r")
            assert "this server has no mirror option" in client.presenter.overlay_lines()
        await client.press(HELP_KEY)
        assert "c  colour correction on/off" in client.presenter.overlay_lines()
        await client.press(HELP_KEY)
        assert "h: keys" in client.presenter.overlay_lines()
        await client.press(STATS_KEY)
        await until(lambda: "server stats: {" in caplog.text, what="the server's stats in the log")
    finally:
        client.stop()
        await asyncio.wait_for(run, 10)
