"""The live options table (protocol/options.py): its checks, and docs/protocol.md's copy of it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.options import (DEFAULT_OPTIONS, OPTIONS, Option, OptionError, as_json, defaults, for_server, merged,
                              validate)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "protocol.md"


def documented_type(option: Option) -> str:
    if option.server_choices:
        among = (" of " + ", ".join(f'`"{choice}"`' for choice in option.choices)) if option.choices else ""
        return f"{'a list' if option.many else 'one'}{among} of the server's loaded {option.label}s"
    if option.kind == "set":
        return "a list of " + ", ".join(f'`"{choice}"`' for choice in option.choices)
    if option.kind == "switch":
        return "boolean"
    if option.kind == "choice":
        return " or ".join(f'`"{choice}"`' for choice in option.choices)
    switch = f" (or boolean: true = {option.switch_on:g})" if option.switch_on is not None else ""
    return f"number {option.range}{switch}"


def table_rows(text: str, after: str) -> list[list[str]]:
    """The rows of the first table whose rows start with a `code` cell, after the line `after`."""
    lines = text.split(after, 1)[1].lstrip("\n").split("\n\n")
    table = next(block for block in lines if block.startswith("| ") and "\n| `" in block)
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")]
            for line in table.splitlines() if line.startswith("| `")]


def test_the_docs_table_lists_every_option_its_type_and_default():
    rows = table_rows(DOCS.read_text(), "## Live options")
    assert [row[0] for row in rows] == [f"`{name}`" for name in OPTIONS], "docs/protocol.md: one row per option, in order"
    for name, kind, default, _meaning in rows:
        option = OPTIONS[name.strip("`")]
        assert kind == documented_type(option), name
        if option.server_choices:
            continue  # its default is the server's
        value = json.loads(default.strip("`"))
        expected = list(option.default) if option.many else option.default
        assert (type(value) is bool, value) == (type(expected) is bool, expected), name


def test_the_readmes_table_lists_every_option_with_its_flag():
    rows = table_rows((ROOT / "README.md").read_text(), "Swap options, as server defaults")
    assert [row[0].strip("`") for row in rows] == list(OPTIONS), "README.md: one row per option, in order"
    for name, flag, _default, _meaning in rows:
        option = OPTIONS[name.strip('`')]
        assert flag.startswith("(per client only" if option.server_choices else f"`{option.flag}"), name


@pytest.mark.parametrize("changes, field, message", [
    ({"opacity": 1.5}, "opacity", "must be a number from 0 to 1"),
    ({"opacity": True}, "opacity", "must be a number from 0 to 1"),
    ({"many_faces": 1}, "many_faces", "must be true or false"),
    ({"blend": "smudge"}, "blend", "must be one of feather, poisson"),
    ({"wings": 2}, "wings", "unknown option; known: " + ", ".join(OPTIONS)),
])
def test_a_bad_change_names_its_field(changes, field, message):
    with pytest.raises(OptionError) as caught:
        validate(changes)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_changes_are_checked_and_normalized():
    assert validate({"mouth_mask": True, "opacity": 0, "blend": "poisson"}) == {"mouth_mask": 50.0, "opacity": 0,
                                                                               "blend": "poisson"}
    assert merged(DEFAULT_OPTIONS, {"mirror": True}) == {**DEFAULT_OPTIONS, "mirror": True}
    assert validate(DEFAULT_OPTIONS) == DEFAULT_OPTIONS


def test_the_pages_table_is_every_row_with_its_kind():
    table = as_json()
    assert json.loads(json.dumps(table)) == table  # JSON as it is
    assert [row["name"] for row in table] == list(OPTIONS)
    assert {row["name"]: row["kind"] for row in table}["blend"] == "choice"
    assert all({"label", "help", "default", "low", "high", "choices"} <= row.keys() for row in table)


def test_a_list_option_takes_distinct_choices_in_any_order():
    regions = Option("regions", ("skin", "nose"), "regions", "", choices=("skin", "nose", "mouth"), many=True)
    assert regions.kind == "set"
    assert regions.check(("mouth", "skin")) == ["mouth", "skin"]
    assert regions.check([]) == []
    for bad in (["skin", "skin"], ["ears"], "skin", [1]):
        with pytest.raises(ValueError, match="must be a list of distinct values among skin, nose, mouth"):
            regions.check(bad)


def test_a_servers_table_offers_only_what_it_loaded():
    table = for_server({"swapper": ("hyperswap_1a_256", "inswapper")})
    assert table["swapper"].choices == ("hyperswap_1a_256", "inswapper")
    assert defaults(table)["swapper"] == "hyperswap_1a_256"  # the first it loaded
    assert validate({"swapper": "inswapper"}, table) == {"swapper": "inswapper"}
    with pytest.raises(OptionError, match="swapper: must be one of hyperswap_1a_256, inswapper"):
        validate({"swapper": "ghost_1_256"}, table)
    assert "swapper" not in DEFAULT_OPTIONS  # outside a server, nobody knows its default
    with pytest.raises(OptionError, match=r"must be one of \(none loaded on this server\)"):
        validate({"swapper": "inswapper"}, for_server({}))
    served = {row["name"]: row for row in as_json({"opacity": 0.5}, table)}
    assert (served["swapper"]["default"], served["swapper"]["choices"]) == ("hyperswap_1a_256",
                                                                          ["hyperswap_1a_256", "inswapper"])
    assert served["opacity"]["default"] == 0.5


def test_a_servers_masks_are_those_it_loaded_and_the_others_are_checked_as_any_option():
    plain, parsing = for_server({"face_mask_types": ("box",)}), for_server({"face_mask_types": ("box", "region")})
    assert (defaults(plain)["face_mask_types"], defaults(parsing)["face_mask_types"]) == (["box"], ["box"])
    assert "face_mask_types" not in DEFAULT_OPTIONS  # outside a server, nobody knows which it has
    assert validate({"face_mask_types": ["region", "box"]}, parsing) == {"face_mask_types": ["region", "box"]}
    with pytest.raises(OptionError, match="face_mask_types: must be a list of distinct values among box$"):
        validate({"face_mask_types": ["box", "occlusion"]}, plain)
    with pytest.raises(OptionError, match="face_mask_regions: must be a list of distinct values among skin, "):
        validate({"face_mask_regions": ["skin", "ears"]})
    with pytest.raises(OptionError, match="face_mask_blur: must be a number from 0 to 1"):
        validate({"face_mask_blur": 2})
    with pytest.raises(OptionError, match="face_mask_padding: must be a number from 0 to 50"):
        validate({"face_mask_padding": -1})
    assert validate({"face_mask_regions": [], "face_mask_padding": 12.5}) == {"face_mask_regions": [],
                                                                              "face_mask_padding": 12.5}


def test_a_server_offers_an_option_only_some_processors_read_only_when_one_of_them_runs():
    bare = for_server({})
    assert "pixel_boost" not in bare and "enhancer_blend" not in bare and "many_faces" in bare
    with pytest.raises(OptionError, match="pixel_boost: not offered by this server: only one with a neural swapper"):
        validate({"pixel_boost": "2x"}, bare)
    neural = for_server({"swapper": ("inswapper",)}, read={"pixel_boost"})
    assert validate({"pixel_boost": "2x"}, neural) == {"pixel_boost": "2x"}
    assert "pixel_boost" in defaults(neural) and "enhancer_blend" not in defaults(neural)
