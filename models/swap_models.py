"""Swapper models, one small class per family, batched: every face of every frame in one call.

A swapper model has `identity(embedding)` (once per client source: what its `source` input
takes for that person) and `generate(frames, jobs)` (once per batch: the swapped crops and
the matrices that cut them). A family is its crop (`CropFormat`: the template and size it
was trained on and its input normalisation and output range, models/alignment.py) and how it
feeds the identity; the processor (models/processors.py), the paste-back
(models/paste_back.py), tracking and options are the same for all. `SWAP_MODELS` names them
for `--frame-processor`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from .alignment import align
from .device import DeviceSession
from .face import SwapJob
from .host import HostPool
from .inswapper import InSwapper, load_emap
from .registry import MODELS, ModelError


class SwapModel(Protocol):
    def identity(self, embedding: np.ndarray) -> np.ndarray:
        """What the model's `source` input takes for the person of this recognizer embedding."""

    def generate(self, frames: Sequence[np.ndarray], jobs: Sequence[SwapJob]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Swapped BGR crops (N, S, S, 3) uint8 for all jobs, one call, and each crop's alignment matrix."""


@dataclass(frozen=True)
class CropFormat:
    """How a family's model sees a face and gives it back."""

    template: str  # models/alignment.py's TEMPLATES
    size: int
    mean: float  # target input: RGB / 255, then (x - mean) / std
    std: float
    signed_output: bool  # output in [-1, 1] (undo the normalisation) rather than [0, 1]

    def to_input(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops -> the (N, 3, S, S) float32 RGB blob the model takes."""
        rgb = np.stack(crops)[..., ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(((rgb - self.mean) / self.std).transpose(0, 3, 1, 2))

    def from_output(self, output: np.ndarray) -> np.ndarray:
        """The model's (N, 3, S, S) output -> BGR uint8 crops (N, S, S, 3)."""
        unit = output * self.std + self.mean if self.signed_output else output
        rgb = np.clip(unit, 0.0, 1.0).transpose(0, 2, 3, 1)
        return np.ascontiguousarray((rgb[..., ::-1] * 255.0).round().astype(np.uint8))


def check_inputs(session: DeviceSession, model: str, crop: CropFormat) -> None:
    """Refuse, with a message that says what to check, a file whose inputs are not the family's
    (`source`, and `target` of the crop's size): a file is loaded whatever its hash, so a
    different model under this name must fail here, not as garbage faces."""
    shapes = {i.name: list(i.shape) for i in session.get_inputs()}
    expected = {"source": "(N, 512)", "target": f"(N, 3, {crop.size}, {crop.size})"}
    target = shapes.get("target", [])
    if set(shapes) != set(expected) or any(isinstance(d, int) and d != want
                                             for d, want in zip(target[1:], (3, crop.size, crop.size))):
        found = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ModelError(f"{model}: inputs {found}; this family's model takes "
                         f"{', '.join(f'{name} {shape}' for name, shape in expected.items())} "
                         "(a different model under this name?)")


def normalised(embedding: np.ndarray) -> np.ndarray:
    return (embedding / np.linalg.norm(embedding)).astype(np.float32)


class Hyperswap:
    """hyperswap_1a/1b/1c_256 (FaceFusion, 2025): the normalised recognizer embedding as
    `source`, a 256 px arcface_128 crop in [-1, 1] as `target`; output [0] in [-1, 1] (its
    second output, a mask, is not used)."""

    crop = CropFormat("arcface_128", 256, mean=0.5, std=0.5, signed_output=True)

    def __init__(self, name: str, session: DeviceSession, host: HostPool) -> None:
        check_inputs(session, name, self.crop)
        self.session = session
        self.host = host

    def identity(self, embedding: np.ndarray) -> np.ndarray:
        return normalised(embedding)

    def generate(self, frames: Sequence[np.ndarray], jobs: Sequence[SwapJob]) -> tuple[np.ndarray, list[np.ndarray]]:
        return generate(self.session, self.crop, self.host, frames, jobs)


def generate(session: DeviceSession, crop: CropFormat, host: HostPool, frames: Sequence[np.ndarray],
             jobs: Sequence[SwapJob]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The batched call every family with `source` and `target` inputs makes."""
    aligned = host.map("swap_pre", lambda job: align(frames[job.frame_index], job.face.kps, crop.template, crop.size),
                       jobs)
    with host.stage("swap_pre"):
        target = crop.to_input([made for made, _ in aligned])
        source = np.stack([job.identity for job in jobs]).astype(np.float32)
    output = session.run(None, {"source": source, "target": target})[0]
    with host.stage("swap_post"):
        fakes = crop.from_output(output)
    return fakes, [matrix for _, matrix in aligned]


SwapModelFactory = Callable[[str, DeviceSession, Path, HostPool], SwapModel]

# A family (models/registry.py's `family` of a swapper file) -> how to make its model.
FAMILIES: Mapping[str, SwapModelFactory] = {
    "inswapper": lambda model, session, path, host: InSwapper(session, load_emap(path), host),
    "hyperswap": lambda model, session, path, host: Hyperswap(model, session, host),
}

SWAP_MODELS: Mapping[str, SwapModelFactory] = {name: FAMILIES[spec.family] for name, spec in MODELS.items()
                                               if spec.role == "swapper" and spec.family is not None}
