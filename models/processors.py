"""The face pipeline's frame processors: the two swappers and the enhancers.

Each is a `frame.FrameProcessor`: `prepare_source(image)` once per client source photo,
`process(frames, contexts)` once per batch, every model step one ONNX call for all faces of
all frames. `contexts[i].sources[name]` is what `prepare_source` returned for frame i's
client (None: no source yet), `contexts[i].face_map` its people-to-sources map (a frame with
neither is left alone) and `contexts[i].options` its live options (see protocol/options.py).
Swappers that can recognise people also have `can_identify` and `identify`. They get their
models from a `hub.ModelHub`; `choice.py` names them for `--frame-processor`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import classic, pixel_boost
from .analysis import FaceAnalyser, embedding
from .blend import Patch, paste
from .enhancer import DEFAULT_BLEND, DEFAULT_WEIGHT, EnhanceJob, Enhancer
from .face import Face, SwapJob
from .frame import FrameContext
from .host import HostPool
from .hub import ModelHub
from .masks import DEFAULT_BLUR, MaskJob
from .paste_back import patch
from .recognizer import cosine
from .registry import MODELS, ModelError, require
from .swap_models import SWAP_MODELS, SwapModel

log = logging.getLogger(__name__)

MATCH_THRESHOLD = 0.35  # cosine: same person well above (~0.9 mirrored), others well below (<0.25)


def _targets(frames: Sequence[np.ndarray], contexts: Sequence[FrameContext], name: str) -> list[int]:
    """Indices of frames whose client has something to swap for processor `name`, visibly."""
    return [i for i, c in enumerate(contexts)
            if (c.sources.get(name) is not None or c.face_map) and c.options.get("opacity", 1.0) > 0]


def _source_for(face: Face, context: FrameContext, name: str) -> Any:
    """The source to put on `face`: its person's in the client's face map, else per `map_unmatched`."""
    if context.face_map and face.embedding is not None:
        best = max(context.face_map, key=lambda mapped: cosine(mapped.embedding, face.embedding))
        if cosine(best.embedding, face.embedding) >= MATCH_THRESHOLD:
            return best.sources.get(name)
        if context.options.get("map_unmatched", "leave") == "leave":
            return None
    return context.sources.get(name)


def _paste(host: HostPool, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext],
           patches: Sequence[tuple[int, Patch]]) -> None:
    """Blend the patches into their frames: frames in parallel, each frame's faces in order."""
    by_frame: dict[int, list[Patch]] = {}
    for index, made in patches:
        by_frame.setdefault(index, []).append(made)
    host.map("blend", lambda item: paste(frames[item[0]], item[1], contexts[item[0]].options), list(by_frame.items()))


def _analyse(analyser: FaceAnalyser, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext], chosen: list[int],
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
    option_choices = {"swapper": ("classic",)}

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

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
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
    identities: Mapping[str, np.ndarray]  # swapper choice -> what its model's `source` input takes for this person
    embedding: np.ndarray
    note: str


class NeuralSwapper:
    """Swapper models (models/swap_models.py: inswapper_128, hyperswap, ...) over all faces of
    all frames of the batch, each face with its own client's identity: faces are found once for
    the whole batch, then each model runs once for the faces of the clients that chose it (the
    `swapper` option; its first model for the others). Each swapped crop is pasted through the
    masks its client chose (models/masks.py: `face_mask_types`, ...), each mask model once for
    the batch."""

    def __init__(self, hub: ModelHub, model: str = "inswapper_128", model_path: Path | None = None,
                 name: str = "inswapper") -> None:
        if hub.mit_only:
            raise ModelError(f"{model} needs InsightFace's recognizer; the MIT-only pipeline (--detector "
                             "centerface) runs the classic swapper only")
        path = model_path or require(model, hub.settings.models_dir)
        if hub.recognizer_name() != "w600k_r50":
            log.warning("%s was trained on w600k_r50's embeddings, which were not found; the embedded %s gives "
                        "other identities (`python -m models fetch w600k_r50`)", model, hub.recognizer_name())
        self.name = name
        self.models: dict[str, SwapModel] = {name: SWAP_MODELS[model](model, hub, path)}
        self.licences: dict[str, str] = {name: MODELS[model].licence}
        self.analyser = hub.analyser
        self.masker = hub.masker
        self.host = hub.host

    @property
    def options_read(self) -> tuple[str, ...]:
        """The live options only some processors read (protocol/options.py's `read_by`) that this one does."""
        regions = ("face_mask_regions",) if "region" in self.masker.types else ()
        return ("pixel_boost", "face_mask_blur", "face_mask_padding", *regions)

    @property
    def option_choices(self) -> dict[str, Mapping[str, str] | tuple[str, ...]]:
        """The `swapper` choices, each with its licence (shown where a client chooses), and the
        mask types this server has models for."""
        return {"swapper": dict(self.licences), "face_mask_types": self.masker.types}

    def join(self, other: NeuralSwapper) -> None:
        """Take `other`'s models as further choices (a server loading several swappers runs one
        processor: one face analysis for the batch, whatever each client chose)."""
        self.models.update(other.models)
        self.licences.update(other.licences)

    def prepare_source(self, image: np.ndarray) -> NeuralSource:
        photo = self.analyser.source_face(image)
        return NeuralSource({name: model.identity(photo) for name, model in self.models.items()}, embedding(photo),
                            photo.note)

    def _choice(self, context: FrameContext) -> str:
        chosen = context.options.get("swapper")
        return chosen if chosen in self.models else next(iter(self.models))

    can_identify = True

    def identify(self, image: np.ndarray) -> np.ndarray:
        return self.analyser.identify(image)

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
        chosen = _targets(frames, contexts, self.name)
        needs_landmarks = any(contexts[i].options.get("mouth_mask", 0) for i in chosen)
        by_model: dict[str, list[SwapJob]] = {}
        for index, frame_faces in zip(chosen, _analyse(self.analyser, frames, contexts, chosen, needs_landmarks)):
            model = self._choice(contexts[index])
            boost = pixel_boost.factor(contexts[index].options.get("pixel_boost", pixel_boost.DEFAULT))
            by_model.setdefault(model, []).extend(
                SwapJob(index, face, source.identities[model], boost) for face in frame_faces
                if (source := _source_for(face, contexts[index], self.name)) is not None)
        made: list[tuple[SwapJob, np.ndarray, np.ndarray]] = []
        for model, jobs in by_model.items():
            if jobs:
                fakes, matrices = self.models[model].generate(frames, jobs)
                made += zip(jobs, fakes, matrices)
        masks = self.masker.masks([MaskJob(frames[job.frame_index], matrix, fake, contexts[job.frame_index].options)
                                   for job, fake, matrix in made])  # before anything is pasted: the target as it is

        def patch_of(item: tuple[SwapJob, np.ndarray, np.ndarray, np.ndarray]) -> Patch:
            job, fake, matrix, mask = item
            return patch(frames[job.frame_index].shape, job.face, matrix, fake, mask)

        patches = self.host.map("paste", patch_of, [(*one, mask) for one, mask in zip(made, masks)])
        _paste(self.host, frames, contexts, [(job.frame_index, one) for (job, _, _), one in zip(made, patches)])
        return list(frames)


class FaceEnhancer:
    """An enhancer model (models/enhancer.py's `ENHANCERS`: GFPGAN, GPEN-BFR, CodeFormer,
    RestoreFormer++) restoring every face after a swapper, as Deep-Live-Cam's `face_enhancer`.

    It restores the faces the swapper tracked in the same frame, handed over in the frame's
    `scratch` (`analysis.ANALYSED`, which `analyse_tracked` writes and reads): the same
    smoothed, held faces, and no second detection. Alone, it finds the faces itself. Each
    client's `enhancer_blend` (0 leaves its frames alone, without a model call) and
    `enhancer_weight` (CodeFormer's fidelity) apply to its own faces."""

    def __init__(self, hub: ModelHub, model: str = "gfpgan_1.4", model_path: Path | None = None,
                 name: str = "enhancer") -> None:
        self.name = name
        self.enhancer = Enhancer(model, hub.session(model, model_path), hub.host, hub.masker)
        self.analyser = hub.analyser

    options_read = ("enhancer_blend", "enhancer_weight", "face_mask_blur")  # see NeuralSwapper.options_read

    @property
    def option_choices(self) -> dict[str, tuple[str, ...]]:
        """The mask types its restored faces may be pasted through (those this server has; not the
        regions, which are the swap's)."""
        return {"face_mask_types": tuple(kind for kind in self.enhancer.masker.types if kind != "region")}

    def prepare_source(self, image: np.ndarray) -> None:
        return None

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
        chosen = [i for i, c in enumerate(contexts)  # only swapped frames: the others come back as sent
                  if (any(s is not None for s in c.sources.values()) or c.face_map)
                  and c.options.get("opacity", 1.0) > 0 and _enhance_choices(c.options)[0] > 0]
        faces = self.analyser.analyse_tracked([frames[i] for i in chosen], [contexts[i] for i in chosen], False)
        masks = {index: self._mask_options(contexts[index].options) for index in chosen}
        self.enhancer.enhance([EnhanceJob(frames[index], face, *_enhance_choices(contexts[index].options),
                                          options=masks[index])
                               for index, frame_faces in zip(chosen, faces) for face in frame_faces])
        return list(frames)

    def _mask_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The masks a restored face goes back through: the box (the client's blur, no padding:
        the restored square must fade out before its edge whatever the swap's masks), and the
        occlusion when the client chose it; never the regions (they are the swap's choice)."""
        chosen = self.enhancer.masker.chosen(options)
        return {"face_mask_types": ["box", *(["occlusion"] if "occlusion" in chosen else [])],
                "face_mask_blur": options.get("face_mask_blur", DEFAULT_BLUR), "face_mask_padding": 0.0}


def _enhance_choices(options: Mapping[str, Any]) -> tuple[float, float]:
    """A client's blend amount (0..1, from its `enhancer_blend` percentage) and CodeFormer fidelity."""
    return (float(options.get("enhancer_blend", DEFAULT_BLEND)) / 100,
            float(options.get("enhancer_weight", DEFAULT_WEIGHT)))
