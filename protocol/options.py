"""The live swap options: one row each, and the one place that says what they are.

The server validates every `config` against this table and takes its defaults from it (its
command line sets them); the Python client makes its flags, overlay labels and key ranges
from it; the web page builds its controls from it (the server serves it as `GET /options`);
tests/protocol checks docs/protocol.md's table against it. Adding an option is one row here,
its row in that table, and the code in `models/` that uses it (models read a client's options
as a mapping, with `.get(name, default)`, and import nothing of ours).

Every change is validated as a whole before anything is applied, so a bad field changes
nothing and the error names the field.

Some options choose among what a server has loaded (its swapper models, its mask models):
their rows say `server_choices`. Others only mean something to some processors (pixel boost
and the mask settings to a neural swapper, the enhancer's to an enhancer): their rows say
`read_by`, and a server offers them only when one of its processors reads them. A server
validates against, and serves, `for_server(...)`: this table with those options' choices and
defaults narrowed to what it has, without the options nothing of it reads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Collection, Literal, Mapping, Sequence


class OptionError(ValueError):
    """A `config` change that cannot be applied; `field` is the offending option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Option:
    """One live option. Its kind follows from its fields: a list of distinct `choices` when
    `many`, one of them with `choices` (or `server_choices`), a number with a range (`low`,
    `high`), otherwise an on/off switch."""

    name: str  # as on the wire, and as command-line flags: many_faces -> --many-faces
    default: bool | float | str | tuple[str, ...]
    label: str  # short, for the client's overlay and the page's controls
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    switch_on: float | None = None  # a number a switch may set too: true means this value, false 0
    many: bool = False  # a list of distinct choices (masks to combine, regions to keep), in any order
    server_choices: bool = False  # the choices are those of `choices` the server has loaded (any, when empty)
    notes: Mapping[str, str] = field(default_factory=dict)  # choice -> what to know when choosing it (a licence)
    read_by: str = ""  # offered only by a server with a processor that reads it (these; "": every server)

    @property
    def kind(self) -> Literal["switch", "number", "choice", "set"]:
        if self.many:
            return "set"
        if self.choices or self.server_choices:
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
        """`value`, normalized (a switch on a number: its number; a set: a list); ValueError says
        what is accepted."""
        accepted = ", ".join(self.choices) if self.choices else "(none loaded on this server)"
        if self.kind == "set":
            if (not isinstance(value, (list, tuple)) or any(not isinstance(v, str) or v not in self.choices for v in value)
                    or len(set(value)) != len(value)):
                raise ValueError(f"must be a list of distinct values among {accepted}")
            return list(value)
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise ValueError(f"must be one of {accepted}")
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


# What the region mask may keep (a face parser's labels, models/masks.py), all by default.
FACE_REGIONS = ("skin", "left-eyebrow", "right-eyebrow", "left-eye", "right-eye", "glasses", "nose", "mouth",
                "upper-lip", "lower-lip")

# Who reads the options that only some processors read (`Option.read_by`, as error messages name them).
NEURAL_SWAPPERS = "a neural swapper (inswapper, hyperswap_1a_256, ...)"
MASKED = "a neural swapper or a face enhancer"
ENHANCERS = "a face enhancer (--frame-processor gfpgan_1.4, codeformer, ...)"

OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("swapper", "", "swapper", "the swapper model for your faces, among those the server has loaded "
           "(GET /options lists them; its first is the default)", server_choices=True),
    Option("pixel_boost", "1x", "boost", "run the swapper on your faces cropped 2, 3 or 4 times its size (t): "
           "t*t model calls' worth of device time per face for t times the resolution (a 128 px model at "
           "256-512 px, a 256 px one at 512-1024, simswap_unofficial_512 at 1024-2048)", choices=("1x", "2x", "3x", "4x"),
           read_by=NEURAL_SWAPPERS),
    Option("many_faces", True, "many faces", "swap every face in the frame (off: only the largest)"),
    Option("mouth_mask", 0.0, "mouth", "keep the target's own mouth: 0 off .. 100 (more keeps more around it)",
           low=0, high=100, switch_on=50.0),
    Option("face_mask_types", ("box", "occlusion"), "mask",
           "the masks the swapped face is pasted through, combined (a pixel any of them keeps out stays as it was): "
           "box (the crop, its edge blurred), occlusion (what covers the face: hands, glasses, hair; a server with "
           "--face-occluder), region (only the face regions of face_mask_regions; a server with --face-parser)",
           choices=("box", "occlusion", "region"), many=True, server_choices=True),
    Option("face_mask_regions", FACE_REGIONS, "regions",
           "with the region mask: the face regions that are swapped (the others keep the target's)",
           choices=FACE_REGIONS, many=True, read_by="a face parser (--face-parser)"),
    Option("face_mask_blur", 0.3, "mask blur", "the box mask's soft edge: 0 (hard) .. 1, a share of the face",
           low=0, high=1, read_by=MASKED),
    Option("face_mask_padding", 0.0, "mask padding",
           "the box mask's margin, in percent of the face crop on every side: 0 .. 50", low=0, high=50,
           read_by=NEURAL_SWAPPERS),
    Option("opacity", 1.0, "opacity", "blend of the swapped face over the original: 0 (swap off) .. 1", low=0, high=1),
    Option("color_correction", True, "colour", "match the swapped face's colour to the target's skin and light"),
    Option("sharpness", 0.0, "sharpness", "sharpen the swapped face only: 0 off .. 5", low=0, high=5),
    Option("enhancer_blend", 80.0, "enhance", "how much of the restored face a face enhancer (--frame-processor "
           "gfpgan_1.4, codeformer, ...) blends over the frame: 0 off .. 100", low=0, high=100, read_by=ENHANCERS),
    Option("enhancer_weight", 0.5, "fidelity", "CodeFormer's fidelity: 0 (most restored) .. 1 (closest to the face "
           "it was given); other enhancers ignore it", low=0, high=1, read_by=ENHANCERS),
    Option("blend", "feather", "blend", "feather: soft mask; poisson: seamless clone (OpenCV), costlier",
           choices=("feather", "poisson")),
    Option("mirror", False, "mirror", "flip frames horizontally, as a selfie camera shows you"),
    Option("map_unmatched", "leave", "map unmatched",
           "with a face map, faces of no mapped person: leave them, or give them the source face",
           choices=("leave", "default")),
    Option("smoothing", 1.0, "smoothing", "temporal smoothing of face positions: 0 off, 1 default, more is smoother",
           low=0, high=10),
)}



def defaults(table: Mapping[str, Option] = OPTIONS) -> dict[str, Any]:
    """Each option's default, as a `config` would carry it; an option of the server's choices
    only where the table offers it some (in a server's table, `for_server`, its default is one
    the server has)."""
    return {name: list(option.default) if option.many else option.default for name, option in table.items()
            if not option.server_choices or option.choices}


# The defaults that hold on any server (a server's command line starts from them): not those of
# the options whose choices are what a server loaded, which only its table (`for_server`) knows.
DEFAULT_OPTIONS: dict[str, Any] = {name: value for name, value in defaults().items()
                                   if not OPTIONS[name].server_choices}


def for_server(loaded: Mapping[str, Sequence[str] | Mapping[str, str]],
               read: Collection[str] = ()) -> dict[str, Option]:
    """The table as a server with these choices loaded offers it: each `server_choices`
    option narrowed to `loaded[name]` (nothing, when absent; a mapping gives each choice a
    note, its model's licence), its default the table's where the server has it, else the
    first it has (a list option: the table's that it has); a `read_by` option only when it is
    in `read` (the options the server's processors read)."""
    table = {}
    for name, option in OPTIONS.items():
        if option.read_by and name not in read:
            continue
        if option.server_choices:
            offered = loaded.get(name, ())
            given = tuple(offered)
            unknown = [choice for choice in given if option.choices and choice not in option.choices]
            if unknown:
                raise ValueError(f"{name}: {', '.join(unknown)} not among {', '.join(option.choices)}")
            if option.many:
                default: Any = tuple(choice for choice in option.default if choice in given)
            else:
                default = option.default if option.default in given else (given[0] if given else "")
            notes = {choice: note for choice, note in offered.items() if note} if isinstance(offered, Mapping) else {}
            option = replace(option, choices=given, default=default, notes=notes)
        table[name] = option
    return table


def validate(changes: Mapping[str, Any], table: Mapping[str, Option] = OPTIONS) -> dict[str, Any]:
    """Checked and normalized values of `changes` against `table` (a server's: `for_server`);
    raises `OptionError` on the first bad field."""
    if not isinstance(changes, Mapping):
        raise OptionError("options", "must be an object of option names to values")
    checked = {}
    for name, value in changes.items():
        option = table.get(name)
        if option is None and name in OPTIONS:
            raise OptionError(name, f"not offered by this server: only one with {OPTIONS[name].read_by} reads it")
        if option is None:
            raise OptionError(name, f"unknown option; known: {', '.join(table)}")
        try:
            checked[name] = option.check(value)
        except ValueError as exc:
            raise OptionError(name, str(exc)) from None
    return checked


def merged(current: Mapping[str, Any], changes: Mapping[str, Any],
           table: Mapping[str, Option] = OPTIONS) -> dict[str, Any]:
    return {**current, **validate(changes, table)}


def as_json(server_defaults: Mapping[str, Any] | None = None,
            table: Mapping[str, Option] = OPTIONS) -> list[dict[str, Any]]:
    """The table for the web page (`GET /options`): every field of every row, and its kind;
    `server_defaults` (a server's command-line choices) replace the table's, so a page starts
    from what that server applies to a client that sent no `config`."""
    starting = {**defaults(table), **(server_defaults or {})}
    return [{**asdict(option), "default": starting.get(option.name), "choices": list(option.choices),
             "notes": dict(option.notes), "kind": option.kind} for option in table.values()]
