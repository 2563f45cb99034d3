"""Frame processors of the face pipeline, as the server runs them.

A processor has a `name`, `prepare_source(image)` (once per client source photo) and
`process(frames, contexts)` (once per batch: every model step is one ONNX call for all
faces of all frames). `contexts[i].sources[name]` is what `prepare_source` returned for
frame i's client (None: no source yet), `contexts[i].face_map` its people-to-sources map
(a frame with neither is left alone) and `contexts[i].options` its live options (see
protocol/options.py). Swappers that can recognise people also have `can_identify` and `identify`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from . import classic
from .analysis import Client, FaceAnalyser
from .blend import Patch, paste
from .device import DeviceSession, ModelDevice
from .enhancer import Enhancer
from .host import HostPool
from .inswapper import InSwapper, SwapJob, load_emap, patch
from .landmarks import Landmarks106
from .face import Face
from .recognizer import ArcFace, cosine
from .registry import MODELS, ModelError, locate, require
from .scrfd import ScrfdDetector
from .sessions import SessionCache, SessionOptions, open_session
from .simulated import COST_TABLES, SIMULATED, SimulatedSession

log = logging.getLogger(__name__)

DETECTORS = ("scrfd", "centerface")


MATCH_THRESHOLD = 0.35  # cosine: same person well above (~0.9 mirrored), others well below (<0.25)


@dataclass(frozen=True)
class MappedFace:
    """One pair of a client's face map: a person (by embedding) and what to swap onto them."""

    embedding: np.ndarray
    sources: Mapping[str, Any]  # processor name -> prepared source


class Context(Client, Protocol):
    sources: Mapping[str, Any]
    face_map: Sequence[MappedFace]


@dataclass(frozen=True)
class ModelSettings:
    provider: str = "cpu"
    threads: int = 0
    models_dir: Path | None = None
    detector: str = "scrfd"
    det_size: int = 320
    detect_every: int = 1
    hold_frames: int = 3
    device: int = 0  # GPU index for cuda/tensorrt/rocm; CPU "devices" share the CPU
    simulated_device: str = "h100"  # the cost table of `provider="simulated"` (models/simulated.py)


class ModelHub:
    """Sessions and analysers shared by all processors (and all clients) of one device.

    Every session it opens queues its calls on `device`; processors fan their host work out
    over `host`."""

    def __init__(self, settings: ModelSettings, device: ModelDevice | None = None, host: HostPool | None = None) -> None:
        self.settings = settings
        self.device = device or ModelDevice(f"device {settings.device}")
        self.host = host or HostPool()
        self.sessions = SessionCache()
        self._analyser: FaceAnalyser | None = None

    def session(self, name: str, path: Path | None = None) -> DeviceSession:
        spec = MODELS[name]
        settings = self.settings
        options = SessionOptions(settings.provider, settings.threads, settings.device)
        opener = self._simulated_opener(name) if settings.provider == SIMULATED else None
        raw = self.sessions.get(path or require(name, settings.models_dir), options, spec.batch_axes, opener)
        return DeviceSession(raw, self.device, name)

    def _simulated_opener(self, name: str):
        table = COST_TABLES[self.settings.simulated_device]
        if name not in table:
            raise ModelError(f"the simulated device has no cost for {name}; known: {', '.join(table)}")

        def open_simulated(path: Path, options: SessionOptions, batch_axes) -> SimulatedSession:
            cpu = SessionOptions("cpu", options.threads)
            return SimulatedSession(name, path, table[name], open_real=lambda: open_session(path, cpu, batch_axes))

        return open_simulated

    def recognizer_name(self) -> str:
        """inswapper was trained on w600k_r50 embeddings; the embedded MobileFaceNet is the fallback."""
        return "w600k_r50" if locate(MODELS["w600k_r50"], self.settings.models_dir) else "w600k_mbf"

    @property
    def mit_only(self) -> bool:
        """`--detector centerface`: no InsightFace weights at all (no landmarks, no recognizer)."""
        return self.settings.detector == "centerface"

    @property
    def analyser(self) -> FaceAnalyser:
        if self._analyser is None:
            self._analyser = FaceAnalyser(
                detector=self._detector(),
                landmarks=None if self.mit_only else Landmarks106(self.session("2d106det"), self.host),
                recognizer=None if self.mit_only else ArcFace(self.session(self.recognizer_name()), self.host),
                detect_every=self.settings.detect_every,
                hold_frames=self.settings.hold_frames,
                host=self.host,
            )
        return self._analyser

    def _detector(self):
        settings = self.settings
        if settings.detector == "centerface":
            from .centerface import CenterFaceDetector

            return CenterFaceDetector(self.session("centerface"), det_size=settings.det_size, host=self.host)
        name = "det_10g" if locate(MODELS["det_10g"], settings.models_dir) else "scrfd_500m"
        return ScrfdDetector(self.session(name), det_size=settings.det_size, host=self.host)


def _targets(frames: Sequence[np.ndarray], contexts: Sequence[Context], name: str) -> list[int]:
    """Indices of frames whose client has something to swap for processor `name`, visibly."""
    return [i for i, c in enumerate(contexts)
            if (c.sources.get(name) is not None or c.face_map) and c.options.get("opacity", 1.0) > 0]


def _source_for(face: Face, context: Context, name: str) -> Any:
    """The source to put on `face`: its person's in the client's face map, else per `map_unmatched`."""
    if context.face_map and face.embedding is not None:
        best = max(context.face_map, key=lambda mapped: cosine(mapped.embedding, face.embedding))
        if cosine(best.embedding, face.embedding) >= MATCH_THRESHOLD:
            return best.sources.get(name)
        if context.options.get("map_unmatched", "leave") == "leave":
            return None
    return context.sources.get(name)


def _paste(host: HostPool, frames: Sequence[np.ndarray], contexts: Sequence[Context],
           patches: Sequence[tuple[int, Patch]]) -> None:
    """Blend the patches into their frames: frames in parallel, each frame's faces in order."""
    by_frame: dict[int, list[Patch]] = {}
    for index, made in patches:
        by_frame.setdefault(index, []).append(made)
    host.map("blend", lambda item: paste(frames[item[0]], item[1], contexts[item[0]].options), list(by_frame.items()))


def _analyse(analyser: FaceAnalyser, frames: Sequence[np.ndarray], contexts: Sequence[Context], chosen: list[int],
             with_landmarks: bool) -> list[list[Face]]:
    clients = [contexts[i] for i in chosen]
    return analyser.analyse_tracked([frames[i] for i in chosen], clients, with_landmarks,
                                    identify=[bool(c.face_map) for c in clients])


@dataclass(frozen=True)
class ClassicSource:
    swap: classic.WarpSource
    note: str


class ClassicSwapper:
    """Landmark-driven warp + colour transfer + feathered blend: real swaps with no swapper weights."""

    name = "classic"

    def __init__(self, hub: ModelHub) -> None:
        self.analyser = hub.analyser
        self.host = hub.host

    def prepare_source(self, image: np.ndarray) -> ClassicSource:
        photo = self.analyser.source_face(image)
        return ClassicSource(classic.prepare_source(photo), photo.note)

    @property
    def can_identify(self) -> bool:
        return self.analyser.can_identify

    def identify(self, image: np.ndarray) -> np.ndarray:
        return self.analyser.identify(image)

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[Context]) -> list[np.ndarray]:
        chosen = _targets(frames, contexts, self.name)
        jobs = [(index, face, source.swap)
                for index, frame_faces in zip(chosen, _analyse(self.analyser, frames, contexts, chosen, True))
                for face in frame_faces
                if (source := _source_for(face, contexts[index], self.name)) is not None]
        patches = self.host.map("swap", lambda job: classic.render(frames[job[0]].shape, job[1], job[2]), jobs)
        _paste(self.host, frames, contexts, [(job[0], patch) for job, patch in zip(jobs, patches) if patch is not None])
        return list(frames)


@dataclass(frozen=True)
class NeuralSource:
    latent: np.ndarray
    embedding: np.ndarray
    note: str


class NeuralSwapper:
    """inswapper_128 over all faces of all frames of the batch in one call."""

    name = "inswapper"

    def __init__(self, hub: ModelHub, model_path: Path | None = None) -> None:
        if hub.mit_only:
            raise ModelError("inswapper needs InsightFace's recognizer; the MIT-only pipeline (--detector "
                             "centerface) runs the classic swapper only")
        path = model_path or require("inswapper_128", hub.settings.models_dir)
        self.swapper = InSwapper(hub.session("inswapper_128", path), load_emap(path), hub.host)
        self.analyser = hub.analyser
        self.host = hub.host

    def prepare_source(self, image: np.ndarray) -> NeuralSource:
        photo = self.analyser.source_face(image)
        assert photo.face.embedding is not None
        return NeuralSource(self.swapper.latent(photo.face.embedding), photo.face.embedding, photo.note)

    can_identify = True

    def identify(self, image: np.ndarray) -> np.ndarray:
        return self.analyser.identify(image)

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[Context]) -> list[np.ndarray]:
        chosen = _targets(frames, contexts, self.name)
        needs_landmarks = any(contexts[i].options.get("mouth_mask", 0) for i in chosen)
        jobs = [
            SwapJob(index, face, source.latent)
            for index, frame_faces in zip(chosen, _analyse(self.analyser, frames, contexts, chosen, needs_landmarks))
            for face in frame_faces
            if (source := _source_for(face, contexts[index], self.name)) is not None
        ]
        if not jobs:
            return list(frames)
        fakes, matrices = self.swapper.generate(frames, jobs)
        patches = self.host.map("paste", lambda made: patch(frames[made[0].frame_index].shape, made[0].face, made[2],
                                                                 made[1]), list(zip(jobs, fakes, matrices)))
        _paste(self.host, frames, contexts, [(job.frame_index, made) for job, made in zip(jobs, patches)])
        return list(frames)


class FaceEnhancer:
    """GFPGAN restoration of every face (after a swapper, as Deep-Live-Cam's `face_enhancer`).

    It restores the faces the swapper tracked in the same frame (the analyser keeps each
    frame's analysis): the same smoothed, held faces, and no second detection."""

    name = "enhancer"

    def __init__(self, hub: ModelHub, model_path: Path | None = None) -> None:
        self.enhancer = Enhancer(hub.session("gfpgan_1.4", model_path), hub.host)
        self.analyser = hub.analyser

    def prepare_source(self, image: np.ndarray) -> None:
        return None

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[Context]) -> list[np.ndarray]:
        chosen = [i for i, c in enumerate(contexts)  # only swapped frames: the others come back as sent
                  if (any(s is not None for s in c.sources.values()) or c.face_map) and c.options.get("opacity", 1.0) > 0]
        images = [frames[i] for i in chosen]
        self.enhancer.enhance(images, self.analyser.analyse_tracked(images, [contexts[i] for i in chosen], False))
        return list(frames)


def auto_swapper_name(settings: ModelSettings) -> tuple[str, str]:
    """`inswapper` when its weights are found, else `classic`; and why."""
    if settings.detector == "centerface":
        return "classic", "the MIT-only pipeline (--detector centerface) has the classic swapper only"
    path = locate(MODELS["inswapper_128"], settings.models_dir)
    if path is not None:
        return "inswapper", f"found {path}"
    return "classic", "inswapper_128.onnx not found (see `python -m models list`); using the embedded classic swapper"


def build_swapper(name: str, hub: ModelHub):
    if name == "auto":
        name, why = auto_swapper_name(hub.settings)
        log.info("face swapper: %s (%s)", name, why)
    return NeuralSwapper(hub) if name == "inswapper" else ClassicSwapper(hub)
