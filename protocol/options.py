"""The live swap options: one row each, and the one place that says what they are.

The server validates every `config` against this table and takes its defaults from it (its
command line sets them); the Python client makes its flags, overlay labels and key ranges
from it; the web page builds its controls from it (the server serves it as `GET /options`);
tests/protocol checks docs/protocol.md's table against it. Adding an option is one row here,
its row in that table, and the code in `models/` that uses it (models read a client's options
as a mapping, with `.get(name, default)`, and import nothing of ours).

Every change is validated as a whole before anything is applied, so a bad field changes
nothing and the error names the field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping


class OptionError(ValueError):
    """A `config` change that cannot be applied; `field` is the offending option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Option:
    """One live option. Its kind follows from its fields: text with `choices`, a number with a
    range (`low`, `high`), otherwise an on/off switch."""

    name: str  # as on the wire, and as command-line flags: many_faces -> --many-faces
    default: bool | float | str
    label: str  # short, for the client's overlay and the page's controls
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    switch_on: float | None = None  # a number a switch may set too: true means this value, false 0

    @property
    def kind(self) -> Literal["switch", "number", "choice"]:
        if self.choices:
            return "choice"
        return "switch" if self.low is None else "number"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range(self) -> str:
        """'0..100', as --help shows a number's values."""
        return f"{self.low:g}..{self.high:g}"

    def clamp(self, value: float) -> float:
        assert self.low is not None and self.high is not None
        return min(self.high, max(self.low, value))

    def check(self, value: Any) -> Any:
        """`value`, normalized (a switch on a number: its number); ValueError says what is accepted."""
        if self.kind == "choice":
            if value in self.choices:
                return value
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        if self.kind == "switch":
            if isinstance(value, bool):
                return value
            raise ValueError("must be true or false")
        assert self.low is not None and self.high is not None
        if isinstance(value, bool) and self.switch_on is not None:
            return self.switch_on if value else 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            raise ValueError(f"must be a number from {self.low:g} to {self.high:g}")
        return value


OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("many_faces", True, "many faces", "swap every face in the frame (off: only the largest)"),
    Option("mouth_mask", 0.0, "mouth", "keep the target's own mouth: 0 off .. 100 (more keeps more around it)",
           low=0, high=100, switch_on=50.0),
    Option("opacity", 1.0, "opacity", "blend of the swapped face over the original: 0 (swap off) .. 1", low=0, high=1),
    Option("color_correction", True, "colour", "match the swapped face's colour to the target's skin and light"),
    Option("sharpness", 0.0, "sharpness", "sharpen the swapped face only: 0 off .. 5", low=0, high=5),
    Option("blend", "feather", "blend", "feather: soft mask; poisson: seamless clone (OpenCV), costlier",
           choices=("feather", "poisson")),
    Option("mirror", False, "mirror", "flip frames horizontally, as a selfie camera shows you"),
    Option("map_unmatched", "leave", "map unmatched",
           "with a face map, faces of no mapped person: leave them, or give them the source face",
           choices=("leave", "default")),
    Option("smoothing", 1.0, "smoothing", "temporal smoothing of face positions: 0 off, 1 default, more is smoother",
           low=0, high=10),
)}

DEFAULT_OPTIONS: dict[str, Any] = {name: option.default for name, option in OPTIONS.items()}


def validate(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Checked and normalized values of `changes`; raises `OptionError` on the first bad field."""
    if not isinstance(changes, Mapping):
        raise OptionError("options", "must be an object of option names to values")
    checked = {}
    for field, value in changes.items():
        option = OPTIONS.get(field)
        if option is None:
            raise OptionError(field, f"unknown option; known: {', '.join(OPTIONS)}")
        try:
            checked[field] = option.check(value)
        except ValueError as exc:
            raise OptionError(field, str(exc)) from None
    return checked


def merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    return {**current, **validate(changes)}


def as_json(defaults: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The table for the web page (`GET /options`): every field of every row, and its kind;
    `defaults` (a server's command-line choices) replace the table's, so a page starts from
    what that server applies to a client that sent no `config`."""
    defaults = defaults or {}
    return [{**asdict(option), "default": defaults.get(option.name, option.default), "choices": list(option.choices),
             "kind": option.kind} for option in OPTIONS.values()]
