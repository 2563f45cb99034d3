"""The server's live swap options as the client knows them: names, ranges, labels.

The client speaks the protocol only (it may not import `models/`), so it keeps its own
table of the options docs/protocol.md lists. One row makes an option a command-line flag
(its starting value), gives it a label in the window's overlay and lets a key reach it.
The server stays the judge: it validates every `config` and confirms the options in
effect, and options it reports that are missing here are still shown, by their name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LiveOption:
    name: str  # as on the wire, and as the flag: many_faces -> --many-faces
    label: str  # short, for the overlay
    help: str
    low: float | None = None  # None: an on/off switch
    high: float | None = None

    @property
    def is_switch(self) -> bool:
        return self.low is None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def clamp(self, value: float) -> float:
        assert self.low is not None and self.high is not None
        return min(self.high, max(self.low, value))


OPTIONS: tuple[LiveOption, ...] = (
    LiveOption("many_faces", "many faces", "swap every face in the picture (--no-many-faces: the largest only)"),
    LiveOption("mouth_mask", "mouth", "keep your own mouth: 0 off .. 100 (more keeps more around it)", 0, 100),
    LiveOption("opacity", "opacity", "blend of the swapped face over yours: 0 (swap off) .. 1", 0, 1),
    LiveOption("color_correction", "colour", "match the swapped face's colour to your skin and light"),
    LiveOption("smoothing", "smoothing", "steadiness of the face positions: 0 off .. 10", 0, 10),
    LiveOption("mirror", "mirror", "flip the picture left to right"),
)

BY_NAME: dict[str, LiveOption] = {option.name: option for option in OPTIONS}


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def describe(name: str, value: Any) -> str:
    """'opacity 0.9', 'colour off': one option as the overlay shows it."""
    option = BY_NAME.get(name)
    return f"{option.label if option is not None else name.replace('_', ' ')} {show_value(value)}"
