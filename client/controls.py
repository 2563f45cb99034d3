"""Live controls: the keys of the display window, each a `config` change, sans-I/O.

`LiveControls.press(key)` turns a key into the message to send (or None); the window, the
tests and any other front end call that one function. The overlay shows only what the
server confirmed (a change on its way is shown as a note until its confirmation), so it
never claims an option the server refused. Options this client asked for (command line,
then keys) are sent again after every reconnect: a new server knows nothing of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from protocol import Config, StatsRequest
from protocol.options import OPTIONS, Option

from .options import describe

HELP_KEY = "h"
STATS_KEY = "t"
OPTIONS_PER_LINE = 3  # the overlay stays narrow enough for a 640-pixel picture

# A key's effect: (option, current value, the last value it had while on) -> the new value.
Change = Callable[[Option, Any, Any], Any]


def toggle(option: Option, value: Any, last_on: Any) -> bool:
    return not value


def switch(on_value: float) -> Change:
    """Off (0) and back on to the value it had before, or `on_value` the first time."""

    def change(option: Option, value: Any, last_on: Any) -> float:
        return 0 if value else (last_on or on_value)

    return change


def step(delta: float) -> Change:
    def change(option: Option, value: Any, last_on: Any) -> float:
        return option.clamp(round(float(value) + delta, 2))

    return change


@dataclass(frozen=True)
class Control:
    keys: str  # every character here triggers it ('+' needs shift: '=' does the same)
    option: str
    change: Change
    help: str


CONTROLS: tuple[Control, ...] = (
    Control("f", "many_faces", toggle, "every face / the largest only"),
    Control("m", "mouth_mask", switch(OPTIONS["mouth_mask"].switch_on), "mouth mask on/off"),
    Control("+=", "opacity", step(0.1), "opacity up"),
    Control("-", "opacity", step(-0.1), "opacity down"),
    Control("s", "opacity", switch(1.0), "swap on/off (opacity 0)"),
    Control("c", "color_correction", toggle, "colour correction on/off"),
    Control("r", "mirror", toggle, "mirror on/off"),
    Control("]", "smoothing", step(1), "smoothing up"),
    Control("[", "smoothing", step(-1), "smoothing down"),
)

KEYS: dict[str, Control] = {key: control for control in CONTROLS for key in control.keys}


class LiveControls:
    """The option state behind the overlay, and what each key press sends."""

    def __init__(self, starting: Mapping[str, Any]) -> None:
        self.wanted: dict[str, Any] = dict(starting)  # sent after every (re)connect
        self.effective: dict[str, Any] | None = None  # the server's last confirmation
        self.show_help = False
        self.note = ""  # what the last key did, or the server's answer to it
        self._last_on: dict[str, Any] = {name: value for name, value in starting.items() if value}

    def on_connect(self) -> Config:
        """The `config` for a new connection: this client's options, or none, which still
        makes the server confirm (and so tell the overlay) every option in effect."""
        return Config(options=dict(self.wanted))

    def press(self, key: str) -> Config | StatsRequest | None:
        if key == HELP_KEY:
            self.show_help = not self.show_help
            return None
        if key == STATS_KEY:
            self.note = "server stats requested (printed in the terminal)"
            return StatsRequest()
        control = KEYS.get(key)
        if control is None:
            return None
        if self.effective is None:
            self.note = "not connected yet: the server has not confirmed its options"
            return None
        if control.option not in self.effective:
            self.note = f"this server has no {control.option} option"
            return None
        option = OPTIONS[control.option]
        current = self.wanted.get(option.name, self.effective[option.name])
        if current:
            self._last_on[option.name] = current
        value = control.change(option, current, self._last_on.get(option.name))
        self.wanted[option.name] = value
        self.note = f"asking for {describe(option.name, value)}"
        return Config(options={option.name: value})

    def confirmed(self, options: Mapping[str, Any]) -> None:
        self.effective = dict(options)
        self.note = ""

    def refused(self, reason: str) -> Config | None:
        """The server refused a `config` (nothing changed): forget the refused wishes.

        Returns the `config` to send next when the server has not yet confirmed any
        options (the starting options were refused): an empty one, which it always accepts.
        """
        confirmed = self.effective or {}
        self.wanted = {name: value for name, value in self.wanted.items() if confirmed.get(name) == value}
        self.note = f"refused: {reason}"
        return Config(options={}) if self.effective is None else None

    def overlay_lines(self) -> list[str]:
        lines = []
        if self.effective is not None:
            shown = [describe(name, value) for name, value in self.effective.items()]
            lines += ["  ".join(shown[i:i + OPTIONS_PER_LINE]) for i in range(0, len(shown), OPTIONS_PER_LINE)]
        if self.note:
            lines.append(self.note)
        lines += self.help_lines() if self.show_help else [f"{HELP_KEY}: keys"]
        return lines

    def help_lines(self) -> list[str]:
        lines = []
        for control in CONTROLS:
            missing = self.effective is not None and control.option not in self.effective
            lines.append(f"{control.keys[0]}  {control.help}{' (not on this server)' if missing else ''}")
        return lines + [f"{STATS_KEY}  print the server's stats", f"{HELP_KEY}  hide this list", "q  quit"]

