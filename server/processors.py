"""The frame-processor interface: a processor sees a whole batch so a model runs once per batch.

Processors are plain objects with three members; the face pipeline (models/) provides the
real ones and this module names them for `--frame-processor`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from models.device import ModelDevice
from models.host import HostPool
from models.processors import FaceEnhancer, MappedFace, ModelHub, ModelSettings, build_swapper

from .config import ServerConfig


@dataclass(frozen=True)
class FrameContext:
    """What a processor may know about the client a frame came from."""

    client_id: int
    sources: Mapping[str, Any] = field(default_factory=dict)  # processor name -> prepared source
    options: Mapping[str, Any] = field(default_factory=dict)  # the client's live options
    face_map: tuple[MappedFace, ...] = ()  # several sources, each for one person (face_map message)
    state: dict[str, Any] = field(default_factory=dict)  # processors' per-client state (face tracks)
    time: float = 0.0  # tracking's clock: the frame's arrival (time.monotonic()), or a job frame's video time
    order: int = 0  # the frame's place among its client's frames, as taken
    scratch: dict[str, Any] = field(default_factory=dict)  # this frame's: what one processor hands the next


class FrameProcessor(Protocol):
    name: str

    def prepare_source(self, image: np.ndarray) -> Any:
        """Turn a client's source photo into whatever `process` needs (once, not per frame).

        Raises `protocol.ProtocolError` (e.g. `no_face`) to refuse the photo.
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


ProcessorFactory = Callable[[ModelHub], FrameProcessor]

PROCESSORS: dict[str, ProcessorFactory] = {
    "passthrough": lambda hub: Passthrough(),
    "classic": lambda hub: build_swapper("classic", hub),
    "inswapper": lambda hub: build_swapper("inswapper", hub),
    "auto": lambda hub: build_swapper("auto", hub),
    "face_swapper": lambda hub: build_swapper("auto", hub),  # Deep-Live-Cam's name
    "enhancer": FaceEnhancer,
    "face_enhancer": FaceEnhancer,
}


def build_processors(config: ServerConfig, device: int = 0, model_device: ModelDevice | None = None,
                     host: HostPool | None = None) -> list[FrameProcessor]:
    """Instantiate `--frame-processor` names in order, sharing one set of model sessions on `device`,
    their calls queued on `model_device`, their host work spread over `host`."""
    unknown = [name for name in config.frame_processors if name not in PROCESSORS]
    if unknown:
        raise ValueError(f"unknown frame processor(s) {', '.join(unknown)}; available: {', '.join(PROCESSORS)}")
    hub = ModelHub(ModelSettings(
        provider=config.provider,
        threads=config.execution_threads,
        models_dir=config.models_dir,
        detector=config.detector,
        det_size=config.det_size,
        detect_every=config.detect_every,
        hold_frames=config.hold_frames,
        device=device,
        simulated_device=config.simulated_device,
    ), model_device, host)
    return [PROCESSORS[name](hub) for name in config.frame_processors]
