"""A simulated accelerator: model sessions that take a GPU's time without using the CPU.

`--provider simulated` replaces every model session by a stand-in with the model's exact
inputs and outputs, which sleeps (the GIL released, no CPU used) for `fixed + per_item x
batch` of a cost table, so the scheduler and the host pipeline can be measured here as they
would run beside a GPU. What the stand-ins return keeps the measurement honest:

- Models whose outputs drive the host work (the detector, the landmarks, the recognizer)
  **replay** real outputs: the first time an input is seen, the real model computes it on
  the CPU (counted as a replay miss, and the device is slow while it does), and the output
  is kept; afterwards the same input gets the same output at the simulated cost. So faces
  are found and tracked, crops cut and pasted exactly as with a real device. A benchmark
  streams a looping clip and warms up until there are no misses.
- Models that draw (swappers, enhancers) **echo** an input of their output's shape: the
  face crop comes back as the "swap", in the right range, and is pasted back as usual. The
  pixels are not a swap, the work around them is.
- Mask models give a mask that hides nothing a real one would not: the occluders (xseg)
  **all visible** (every face is swapped whole, as with no occluder in front of it), the face
  parsers (bisenet) a **face parse** drawn once, the same for every face (skin, brows, eyes,
  nose and lips where an aligned crop has them, hair above, background around), so every
  region choice keeps a plausible part of the face. The host work around them (crops,
  decoding the scores, blurs) is the real one, whatever the values.

The cost tables are estimates for an H100-class GPU, per call: a launch floor of 0.3 ms,
plus per item the model's multiply-adds at a realistic share of the chip's peak. For
inswapper_128: 174.6 G multiply-adds (349 GFLOP) per face, 0.45 ms at the fp16 tensor-core
rate measured on an H200 (788 TFLOP/s), 2.5 ms at plain fp32; 5.4 ms on a T4's 65 TFLOP/s
(a device slow enough that it, not this machine's two cores, is the bottleneck: what the
saturation benchmark needs). SCRFD-10G is ~10 GFLOP per 640x480 image; the small models
cost little next to the swapper. The mask models are charged inswapper's time per
multiply-add, their multiply-adds estimated from their architectures (not measured): XSeg
(DeepFaceLab's U-Net, base 32 channels, 256 px) ~16.8 G a face, counted layer by layer;
BiSeNet on ResNet-18 at 512 px ~13.5 G (the backbone's 1.8 G at 224 px, scaled to 512 px,
plus its context and fusion heads), on ResNet-34 ~23 G. No figure measured with a
simulated device is a GPU measurement: it is a projection of one.
"""
from __future__ import annotations

import collections
import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import cv2
import numpy as np
import onnx

from .registry import MODELS

SIMULATED = "simulated"
LAUNCH_FLOOR_MS = 0.3
MEMO_BYTES = 512 * 1024 * 1024  # replayed outputs kept, least recently used first out


INSWAPPER_GMACS = 174.6  # multiply-adds per face, in billions: the unit the mask models' costs scale from


@dataclass(frozen=True)
class SimulatedCost:
    fixed_ms: float
    per_item_ms: float  # per image for detectors, per face for the others
    outputs: Literal["replay", "echo", "all_visible", "face_parse"]


def _table(swap_ms: float, enhance_ms: float, detect_ms: float) -> dict[str, SimulatedCost]:
    small = SimulatedCost(LAUNCH_FLOOR_MS, 0.01, "replay")

    def mask(gmacs: float, outputs: Literal["all_visible", "face_parse"]) -> SimulatedCost:
        return SimulatedCost(LAUNCH_FLOOR_MS, swap_ms * gmacs / INSWAPPER_GMACS, outputs)

    return {
        "scrfd_500m": SimulatedCost(LAUNCH_FLOOR_MS, detect_ms / 10, "replay"),
        "det_10g": SimulatedCost(LAUNCH_FLOOR_MS, detect_ms, "replay"),
        "centerface": SimulatedCost(LAUNCH_FLOOR_MS, detect_ms / 2, "replay"),
        "2d106det": small,
        "w600k_mbf": small,
        "w600k_r50": SimulatedCost(LAUNCH_FLOOR_MS, 0.03, "replay"),
        "inswapper_128": SimulatedCost(LAUNCH_FLOOR_MS, swap_ms, "echo"),
        "inswapper_128_fp16": SimulatedCost(LAUNCH_FLOOR_MS, swap_ms, "echo"),
        "gfpgan_1.4": SimulatedCost(LAUNCH_FLOOR_MS, enhance_ms, "echo"),
        **{name: mask(16.8, "all_visible") for name in ("xseg_1", "xseg_2", "xseg_3")},
        "bisenet_resnet_18": mask(13.5, "face_parse"),
        "bisenet_resnet_34": mask(23.0, "face_parse"),
    }


# A role whose models the table prices by one of them: that model, the input whose side
# scales its cost (per pixel), and that input's side in that model.
SCALED_BY_SIDE: dict[str, tuple[str, str, int]] = {
    "swapper": ("inswapper_128", "target", 128),
    "enhancer": ("gfpgan_1.4", "input", 512),
}


def cost_of(table: dict[str, SimulatedCost], name: str, path: Path) -> SimulatedCost:
    """The table's cost for model `name`. The other swapper families' and enhancers' FLOPs are
    not published, so these are estimates: each is taken as its role's priced model (inswapper,
    GFPGAN) on its own crop, that model's cost per pixel of its input (a 256 px swapper four
    times inswapper's; a 256 px enhancer a quarter of GFPGAN's, a 1024 px one four times, a
    2048 px one sixteen times), and the embedding converters as small models."""
    if name in table:
        return table[name]
    role = MODELS[name].role if name in MODELS else None
    if role == "converter":
        return SimulatedCost(LAUNCH_FLOOR_MS, 0.01, "echo")
    if role not in SCALED_BY_SIDE:
        raise ValueError(f"the simulated device has no cost for {name}; known: {', '.join(table)}")
    priced, input_name, priced_side = SCALED_BY_SIDE[role]
    inputs = {v.name: v for v in onnx.load(str(path), load_external_data=False).graph.input}
    side = inputs[input_name].type.tensor_type.shape.dim[-1].dim_value if input_name in inputs else 0
    if not side:
        raise ValueError(f"{name}: no `{input_name}` input of a fixed size to scale {priced}'s cost by")
    base = table[priced]
    return SimulatedCost(base.fixed_ms, base.per_item_ms * (side / priced_side) ** 2, "echo")


COST_TABLES: dict[str, dict[str, SimulatedCost]] = {
    "h100": _table(swap_ms=0.45, enhance_ms=0.3, detect_ms=0.05),  # fp16 tensor cores
    "h100-fp32": _table(swap_ms=2.5, enhance_ms=1.6, detect_ms=0.2),  # plain fp32
    "t4": _table(swap_ms=5.4, enhance_ms=1.3, detect_ms=0.6),  # a small older GPU: 65 TFLOP/s fp16
}


@dataclass(frozen=True)
class _Arg:
    """What `session.get_inputs()` / `get_outputs()` give: a name and a shape."""

    name: str
    shape: list[Any]
    type: str = "tensor(float)"


def _args(values: Sequence[onnx.ValueInfoProto]) -> list[_Arg]:
    return [_Arg(v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]


class _Memo:
    """Real outputs by input fingerprint, bounded in bytes (least recently used out first)."""

    def __init__(self, limit_bytes: int = MEMO_BYTES) -> None:
        self._items: collections.OrderedDict[tuple, list[np.ndarray]] = collections.OrderedDict()
        self._bytes = 0
        self._limit = limit_bytes
        self._lock = threading.Lock()
        self._weights: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def key(self, item: np.ndarray) -> tuple:
        """Two random projections and the shape: distinct real frames never collide (a hash of
        a megabyte would cost more than the simulated call)."""
        flat = np.ascontiguousarray(item, np.float32).reshape(-1)
        weights = self._weights.get(flat.size)
        if weights is None:
            rng = np.random.default_rng(flat.size)
            weights = self._weights.setdefault(flat.size, (rng.standard_normal(flat.size, np.float32),
                                                            rng.standard_normal(flat.size, np.float32)))
        return item.shape, float(flat @ weights[0]), float(flat @ weights[1]), float(flat.sum())

    def get(self, key: tuple) -> list[np.ndarray] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple, outputs: list[np.ndarray]) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = outputs
            self._bytes += sum(o.nbytes for o in outputs)
            while self._bytes > self._limit and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= sum(o.nbytes for o in evicted)


class SimulatedSession:
    """A model session's stand-in: the model's signature, the table's time, replayed or echoed outputs."""

    def __init__(self, name: str, path: Path, cost: SimulatedCost,
                 open_real: Callable[[], Any] | None, sleep: Callable[[float], None] = time.sleep) -> None:
        graph = onnx.load(str(path), load_external_data=False).graph
        initializers = {i.name for i in graph.initializer}
        self.name = name
        self.cost = cost
        self._inputs = _args([v for v in graph.input if v.name not in initializers])
        self._outputs = _args(graph.output)
        self._open_real = open_real
        self._real: Any = None
        self._real_lock = threading.Lock()
        self._memo = _Memo()
        self._sleep = sleep
        self.misses = 0  # inputs the real model had to compute (replay only)

    def get_inputs(self) -> list[_Arg]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Arg]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [SIMULATED]

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray], *_: Any) -> list[np.ndarray]:
        start = time.perf_counter()
        first = next(iter(feeds.values()))
        items = len(first)
        if self.cost.outputs == "replay":
            outputs = self._replay(feeds, items)
        elif self.cost.outputs == "echo":
            outputs = self._echo(feeds)
        else:
            outputs = self._drawn(items)
        wanted = [o.name for o in self._outputs]
        if output_names:
            outputs = [outputs[wanted.index(name)] for name in output_names]
        remaining = (self.cost.fixed_ms + self.cost.per_item_ms * items) / 1000 - (time.perf_counter() - start)
        if remaining > 0:
            self._sleep(remaining)
        return outputs

    def _echo(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Each output is the first input of its shape (a drawn face crop: the crop itself)."""
        results = []
        for index, output in enumerate(self._outputs):
            rank = len(output.shape)
            match = next((array for array in feeds.values() if array.ndim == rank
                          and all(not isinstance(d, int) or d in (0, s) for d, s in zip(output.shape[1:], array.shape[1:]))), None)
            if match is not None:
                results.append(match.copy())
            elif index > 0 and all(isinstance(d, int) and d > 0 for d in output.shape[1:]):  # an extra (hyperswap's mask)
                results.append(np.zeros((len(next(iter(feeds.values()))), *output.shape[1:]), np.float32))
            else:
                raise ValueError(f"{self.name}: no input has the shape of output {output.name} to echo")
        return results

    def _drawn(self, items: int) -> list[np.ndarray]:
        """A mask model's first output, the same for every face (read-only views of one array),
        and zeros for any other."""
        shapes = [output.shape[1:] for output in self._outputs]
        if not all(isinstance(d, int) and d > 0 for shape in shapes for d in shape):
            raise ValueError(f"{self.name}: a mask model's outputs need fixed sizes to be drawn")
        first = DRAWN[self.cost.outputs](tuple(shapes[0]))
        return [np.broadcast_to(first, (items, *first.shape)),
                *(np.zeros((items, *shape), np.float32) for shape in shapes[1:])]

    def _replay(self, feeds: dict[str, np.ndarray], items: int) -> list[np.ndarray]:
        """The real outputs, item by item from the memo; the real model computes the missing ones."""
        per_item: list[list[np.ndarray] | None] = []
        keys = []
        for index in range(items):
            key = tuple(self._memo.key(array[index]) for array in feeds.values())
            keys.append(key)
            per_item.append(self._memo.get(key))
        missing = [i for i, found in enumerate(per_item) if found is None]
        if missing:
            self.misses += len(missing)
            computed = self._real_session().run(None, {name: array[missing] for name, array in feeds.items()})
            for position, index in enumerate(missing):
                outputs = [_item(output, position, len(missing)) for output in computed]
                self._memo.put(keys[index], outputs)
                per_item[index] = outputs
        return [np.concatenate([found[k] for found in per_item if found is not None], axis=0)
                for k in range(len(self._outputs))]

    def _real_session(self) -> Any:
        with self._real_lock:
            if self._real is None:
                if self._open_real is None:
                    raise ValueError(f"{self.name}: replay needs the real model")
                self._real = self._open_real()
            return self._real


@functools.lru_cache(maxsize=4)
def _all_visible(shape: tuple[int, ...]) -> np.ndarray:
    """An occluder's output that hides nothing: 1 everywhere."""
    return np.ones(shape, np.float32)


@functools.lru_cache(maxsize=4)
def _face_parse(shape: tuple[int, ...]) -> np.ndarray:
    """A face parser's scores (labels, H, W) for a plausible aligned face: one-hot per pixel,
    drawn at the places the five-point templates put the face's parts (eyes at 46% of the
    height, nose tip at 61%, mouth at 72-78%), hair above, background around."""
    labels, height, width = shape
    parse = np.zeros((height, width), np.uint8)
    scale = np.array([width, height])

    def ellipse(center: tuple[float, float], axes: tuple[float, float], label: int) -> None:
        cv2.ellipse(parse, tuple(int(v) for v in np.multiply(center, scale)),
                    tuple(max(1, int(v)) for v in np.multiply(axes, scale)), 0, 0, 360, label, -1)

    ellipse((0.5, 0.3), (0.36, 0.22), 17)  # hair
    ellipse((0.5, 0.55), (0.3, 0.38), 1)  # skin
    for side, (brow, eye) in ((0.36, (2, 4)), (0.64, (3, 5))):  # left brow and eye, right brow and eye
        ellipse((side, 0.39), (0.07, 0.015), brow)
        ellipse((side, 0.46), (0.05, 0.02), eye)
    ellipse((0.5, 0.57), (0.04, 0.06), 10)  # nose
    ellipse((0.5, 0.72), (0.1, 0.02), 12)  # upper lip
    ellipse((0.5, 0.755), (0.09, 0.012), 11)  # mouth
    ellipse((0.5, 0.78), (0.1, 0.02), 13)  # lower lip
    scores = np.zeros(shape, np.float32)
    np.put_along_axis(scores, np.minimum(parse, labels - 1)[None].astype(np.int64), 1.0, axis=0)
    return scores


DRAWN: dict[str, Callable[[tuple[int, ...]], np.ndarray]] = {"all_visible": _all_visible, "face_parse": _face_parse}


def _item(output: np.ndarray, index: int, items: int) -> np.ndarray:
    """Item `index`'s rows of a batched output: its slice on the batch axis, or, for models that
    concatenate every image's rows (det_10g), its equal share of them."""
    rows = len(output) // items
    return output[index * rows:(index + 1) * rows].copy()
