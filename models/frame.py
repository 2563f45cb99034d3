"""The one shape every frame processor has, and the one context every frame carries.

A processor has a `name`, `prepare_source(image)` (once per client source photo) and
`process(frames, contexts)` (once per batch, so a model runs once for all frames of all
clients). `contexts[i]` is frame i's `FrameContext`: its client's prepared sources, face
map and live options (protocol/options.py), the client's state across frames (its face
tracks), the frame's tracking time and order, and the frame's own `scratch`, through which
one processor hands the next what it found (models/analysis.py's `ANALYSED`: the faces).

The server builds one `FrameContext` per frame it takes; tests and benchmarks build them
directly (`FrameContext(options=..., sources=...)`, then `context.frame(order, time)` for
each of a stream's frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence

import cv2
import numpy as np

from .host import HostPool


@dataclass(frozen=True)
class MappedFace:
    """One pair of a client's face map: a person (by embedding) and what to swap onto them."""

    embedding: np.ndarray
    sources: Mapping[str, Any]  # processor name -> prepared source


@dataclass(frozen=True)
class FrameContext:
    """What a processor may know of one frame and the client it came from."""

    client_id: int = 0
    sources: Mapping[str, Any] = field(default_factory=dict)  # processor name -> prepared source
    options: Mapping[str, Any] = field(default_factory=dict)  # the client's live options
    face_map: tuple[MappedFace, ...] = ()  # several sources, each for one person (face_map message)
    state: dict[str, Any] = field(default_factory=dict)  # the client's, across its frames (face tracks)
    time: float = 0.0  # tracking's clock: the frame's arrival (time.monotonic()), or a job frame's video time
    order: int = 0  # the frame's place among its client's frames (0, 1, 2, ... as they were taken)
    scratch: dict[str, Any] = field(default_factory=dict)  # this frame's own: what one processor hands the next

    def frame(self, order: int, time: float) -> FrameContext:
        """The same client's frame `order`, arriving at `time`: its state shared, a scratch of its own."""
        return replace(self, order=order, time=time, scratch={})


class FrameProcessor(Protocol):
    name: str

    def prepare_source(self, image: np.ndarray) -> Any:
        """Turn a client's source photo into whatever `process` needs (once, not per frame).

        Raises `analysis.NoFaceError` (or `protocol.ProtocolError`) to refuse the photo.
        """

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
        """Return one output image per input frame (the input may be modified in place)."""


class Passthrough:
    """Transport only: the frame comes back decoded and re-encoded, unchanged."""

    name = "passthrough"

    def prepare_source(self, image: np.ndarray) -> None:
        return None

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
        return list(frames)


def apply_frame_options(frames: Sequence[np.ndarray], contexts: Sequence[FrameContext],
                        host: HostPool) -> list[np.ndarray]:
    """The options that change the picture itself, before any processor sees it: `mirror`
    flips the frame left to right (the selfie view), so faces are found, swapped and sent
    back mirrored. The other options are read by the processors that use them."""
    flipped = [i for i, context in enumerate(contexts) if context.options.get("mirror")]
    result = list(frames)
    for i, image in zip(flipped, host.map("mirror", lambda i: cv2.flip(frames[i], 1), flipped)):
        result[i] = image
    return result
