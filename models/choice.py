"""Which processors a server runs: the names `--frame-processor` takes, and the automatic swapper choice.

`PROCESSORS` is the default registry: a name -> a factory that makes the processor from the
device's `ModelHub`. The server is given a registry (`create_app(..., processors=...)`), so a
test adds its own processors to a copy instead of changing this one.
"""
from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from .device import ModelDevice
from .enhancer import ENHANCERS
from .frame import FrameProcessor, Passthrough
from .host import HostPool
from .hub import ModelHub, ModelSettings
from .processors import ClassicSwapper, FaceEnhancer, NeuralSwapper
from .registry import MODELS, ModelError, locate
from .swap_models import FAMILY_FILES

log = logging.getLogger(__name__)

ProcessorFactory = Callable[[ModelHub], FrameProcessor]


def auto_swapper_name(settings: ModelSettings) -> tuple[str, str]:
    """`inswapper` when its weights are found, else `classic`; and why."""
    if settings.detector == "centerface":
        return "classic", "the MIT-only pipeline (--detector centerface) has the classic swapper only"
    path = locate(MODELS["inswapper_128"], settings.models_dir)
    if path is not None:
        return "inswapper", f"found {path}"
    return "classic", "inswapper_128.onnx not found (see `python -m models list`); using the embedded classic swapper"


def build_swapper(name: str, hub: ModelHub) -> ClassicSwapper | NeuralSwapper:
    """The swapper called `name` ("classic", "inswapper", or "auto": the one `auto_swapper_name` picks)."""
    if name == "auto":
        name, why = auto_swapper_name(hub.settings)
        log.info("face swapper: %s (%s)", name, why)
    return NeuralSwapper(hub) if name == "inswapper" else ClassicSwapper(hub)


def _swapper_model(model: str) -> ProcessorFactory:
    return lambda hub: NeuralSwapper(hub, model, name=model)


def _enhancer_model(model: str) -> ProcessorFactory:
    return lambda hub: FaceEnhancer(hub, model, name=model)


PROCESSORS: Mapping[str, ProcessorFactory] = MappingProxyType({
    "passthrough": lambda hub: Passthrough(),
    "classic": lambda hub: build_swapper("classic", hub),
    "inswapper": lambda hub: build_swapper("inswapper", hub),
    "auto": lambda hub: build_swapper("auto", hub),
    "face_swapper": lambda hub: build_swapper("auto", hub),  # Deep-Live-Cam's name
    "enhancer": FaceEnhancer,  # GFPGAN 1.4, as Deep-Live-Cam's
    "face_enhancer": FaceEnhancer,
    **{model: _swapper_model(model) for model in FAMILY_FILES},
    **{model: _enhancer_model(model) for model in ENHANCERS},
})


def build_processors(names: Sequence[str], settings: ModelSettings, device: ModelDevice | None = None,
                     host: HostPool | None = None,
                     factories: Mapping[str, ProcessorFactory] = PROCESSORS) -> list[FrameProcessor]:
    """Make the processors `names` in order from `factories`, sharing one set of model sessions
    (`settings.device` says which GPU), their calls queued on `device`, their host work spread
    over `host`. Several neural swappers become one processor whose models each client chooses
    among (the `swapper` option), in the place of the first."""
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise ValueError(f"unknown frame processor(s) {', '.join(unknown)}; available: {', '.join(factories)}")
    hub = ModelHub(settings, device, host)
    processors: list[FrameProcessor] = []
    for name in dict.fromkeys(names):  # a name twice is loaded once
        processor = factories[name](hub)
        first = next((p for p in processors if isinstance(p, NeuralSwapper)), None)
        if isinstance(processor, NeuralSwapper) and first is not None:
            first.join(processor)
            continue
        processors.append(processor)
    if (settings.face_occluder or settings.face_parser) and not any(isinstance(p, (NeuralSwapper, FaceEnhancer))
                                                                    for p in processors):
        log.warning("--face-occluder and --face-parser are the masks of the neural swappers and the enhancers; %s use none",
                    ", ".join(p.name for p in processors))
    swappers = [p.name for p in processors if isinstance(p, (ClassicSwapper, NeuralSwapper))]
    if len(swappers) > 1:
        raise ModelError(f"{' and '.join(swappers)} would swap each face twice: the classic swapper runs alone "
                         "(several neural swappers are one choice per client)")
    return processors
