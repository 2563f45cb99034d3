"""The live options as this client offers them: which become command-line flags, and how the
overlay shows a value.

The options themselves (names, ranges, defaults, help, labels) are `protocol.options`. The
server stays the judge: it validates every `config` and confirms the options in effect.
"""
from __future__ import annotations

from typing import Any

from protocol.options import OPTIONS, Option

# The options with a command-line flag (their starting value, sent after every connect), in
# the order --help lists them; the keys of the window reach some of them (controls.py).
FLAGS: tuple[Option, ...] = tuple(OPTIONS[name] for name in (
    "swapper", "pixel_boost", "many_faces", "mouth_mask", "face_mask_types", "face_mask_regions", "face_mask_blur",
    "face_mask_padding", "opacity", "color_correction", "smoothing", "mirror", "enhancer_blend", "enhancer_weight"))


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return "+".join(value) or "none"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def describe(name: str, value: Any) -> str:
    """'opacity 0.9', 'colour off': one option as the overlay shows it (a server's option this
    side does not know, by its name)."""
    option = OPTIONS.get(name)
    return f"{option.label if option is not None else name.replace('_', ' ')} {show_value(value)}"
