"""Live swap options: server-wide defaults, overridable per client by a `config` message.

Every change is validated as a whole before anything is applied, so a bad field changes
nothing and the error names the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


class OptionError(ValueError):
    """A `config` change that cannot be applied; `field` is the offending option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _number(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"must be a number from {low:g} to {high:g}")
        return value

    return check


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


def _mouth_mask(value: Any) -> float:
    """0 (off) .. 100; `true` means a medium mask, as a switch in a UI would send."""
    if isinstance(value, bool):
        return 50.0 if value else 0.0
    return _number(0, 100)(value)


@dataclass(frozen=True)
class OptionSpec:
    default: Any
    check: Callable[[Any], Any]
    help: str
    choices: tuple[str, ...] = ()  # for text options (command-line flags list them)
    range: str = ""  # for numbers, as shown in --help


OPTIONS: dict[str, OptionSpec] = {
    "many_faces": OptionSpec(True, _boolean, "swap every face in the frame (off: only the largest)"),
    "mouth_mask": OptionSpec(0.0, _mouth_mask, "keep the target's own mouth: 0 off .. 100 (true = 50)", range="0..100"),
    "opacity": OptionSpec(1.0, _number(0, 1), "blend of the swapped face over the original: 0 .. 1", range="0..1"),
    "color_correction": OptionSpec(True, _boolean, "match the swapped face's colour to the target's skin and light"),
    "sharpness": OptionSpec(0.0, _number(0, 5), "sharpen the swapped face only: 0 off .. 5", range="0..5"),
    "blend": OptionSpec("feather", _choice("feather", "poisson"),
                        "feather: soft mask; poisson: seamless clone (OpenCV), costlier", choices=("feather", "poisson")),
    "mirror": OptionSpec(False, _boolean, "flip frames horizontally, as a selfie camera shows you"),
    "map_unmatched": OptionSpec("leave", _choice("leave", "default"),
                                "with a face map, faces of no mapped person: leave them, or give them the source face",
                                choices=("leave", "default")),
    "smoothing": OptionSpec(1.0, _number(0, 10), "temporal smoothing of face positions: 0 off, 1 default, more is smoother",
                            range="0..10"),
}

DEFAULT_OPTIONS: dict[str, Any] = {name: spec.default for name, spec in OPTIONS.items()}


def validate(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Checked and normalized values of `changes`; raises `OptionError` on the first bad field."""
    if not isinstance(changes, Mapping):
        raise OptionError("options", "must be an object of option names to values")
    checked = {}
    for field, value in changes.items():
        spec = OPTIONS.get(field)
        if spec is None:
            raise OptionError(field, f"unknown option; known: {', '.join(OPTIONS)}")
        try:
            checked[field] = spec.check(value)
        except ValueError as exc:
            raise OptionError(field, str(exc)) from None
    return checked


def merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    return {**current, **validate(changes)}
