"""Swapper models, one small class per family, batched: every face of every frame in one call.

A swapper model has `identity(photo)` (once per client source: what its `source` input takes
for that person) and `generate(frames, jobs)` (once per batch: the swapped crops and the
matrices that cut them, each job's crop at its pixel boost, models/pixel_boost.py). A family
is its crop (`CropFormat`: the template and size it was trained on, its input normalisation
and output range, models/alignment.py) and how it feeds
the identity: the recognizer's embedding, normalised (hyperswap, inswapper); that embedding
through a converter model (simswap, ghost, hififace); or a crop of the source photo itself
(blendswap, uniface). The processor (models/processors.py), the paste-back
(models/paste_back.py), tracking and options are the same for all. `SWAP_MODELS` names every
file of every family for `--frame-processor`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Mapping, Protocol, Sequence

import cv2
import numpy as np

from . import pixel_boost
from .alignment import align
from .analysis import SourcePhoto, embedding
from .device import DeviceSession
from .face import SwapJob
from .hub import ModelHub
from .inswapper import InSwapper
from .registry import MODELS, ModelError


class SwapModel(Protocol):
    def identity(self, photo: SourcePhoto) -> np.ndarray:
        """What the model's `source` input takes for the person of this source photo."""

    def generate(self, frames: Sequence[np.ndarray],
                 jobs: Sequence[SwapJob]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Swapped BGR uint8 crops for all jobs, one model call, and each crop's alignment matrix:
        a job's crop is S x its boost square (models/pixel_boost.py), so sizes may differ."""


@dataclass(frozen=True)
class CropFormat:
    """How a family's model sees a face and gives it back."""

    template: str  # models/alignment.py's TEMPLATES
    size: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # RGB / 255, then (x - mean) / std, per channel
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    signed_output: bool = False  # output in [-1, 1] (undo the normalisation) rather than [0, 1]

    def to_input(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops -> the (N, 3, S, S) float32 RGB blob the model takes."""
        return rgb_blob(crops, self.size, self.mean, self.std)

    def from_output(self, output: np.ndarray) -> np.ndarray:
        """The model's (N, 3, S, S) output -> BGR uint8 crops (N, S, S, 3): one multiply-add
        (undoing the normalisation for the [-1, 1] families) on a BGR view, clipped, rounded."""
        scale = 255.0 * np.float32(self.std[::-1]) if self.signed_output else np.full(3, 255.0, np.float32)
        offset = 255.0 * np.float32(self.mean[::-1]) if self.signed_output else np.zeros(3, np.float32)
        bgr = output.transpose(0, 2, 3, 1)[..., ::-1]
        return np.clip(bgr * scale + (offset + 0.5), 0.0, 255.0).astype(np.uint8)


def rgb_blob(crops: Sequence[np.ndarray], size: int, mean: tuple[float, float, float],
             std: tuple[float, float, float]) -> np.ndarray:
    """BGR uint8 images -> (N, 3, size, size) float32 RGB, resized (bilinear) where they are
    not that size: `(x / 255 - mean) / std` as OpenCV's one pass (`x - 255 mean`, times
    `1 / (255 std)`), seven times quicker than NumPy's five over 256 px crops."""
    params = cv2.dnn.Image2BlobParams()
    params.scalefactor = (*(1.0 / (255.0 * s) for s in std), 0.0)
    params.mean = (*(255.0 * m for m in mean), 0.0)
    params.swapRB, params.size, params.ddepth = True, (size, size), cv2.CV_32F
    return cv2.dnn.blobFromImagesWithParams(list(crops), params)


HALF = (0.5, 0.5, 0.5)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _fixes_other_sizes(found: Sequence[object], shape: tuple[int, ...]) -> bool:
    """Whether a file's declared shape (batch axis first) fixes a size other than `shape`'s
    (a symbolic or unknown size fits any)."""
    return any(isinstance(d, int) and d > 0 and d != want for d, want in zip(found[1:], shape))


def check_inputs(session: DeviceSession, model: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse, with a message that says what to check, a file whose inputs are not the model's
    (by name, and by size where the file fixes one): a file is loaded whatever its hash, so a
    different model under this name must fail here, not as garbage faces."""
    found = {i.name: list(i.shape) for i in session.get_inputs()}
    if set(found) != set(shapes) or any(_fixes_other_sizes(found[name], shape) for name, shape in shapes.items()):
        raise ModelError(f"{model}: inputs {', '.join(f'{name} {shape}' for name, shape in found.items())}; "
                         f"this model takes {', '.join(f'{name} (N, {_dims(shape)})' for name, shape in shapes.items())}"
                         " (a different model under this name?)")


def check_output(session: DeviceSession, model: str, shape: tuple[int, ...]) -> None:
    """As `check_inputs`, for a model whose first output the host decodes (a mask model's)."""
    found = list(session.get_outputs()[0].shape)
    if len(found) != len(shape) + 1 or _fixes_other_sizes(found, shape):
        raise ModelError(f"{model}: first output {found}; this model gives (N, {_dims(shape)})"
                         " (a different model under this name?)")


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def normalised(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


class Swapper:
    """A model with `source` and `target` inputs: the target crop in its family's format, batched."""

    crop: ClassVar[CropFormat]
    source_shape: ClassVar[tuple[int, ...]] = (512,)

    def __init__(self, name: str, hub: ModelHub, path: Path) -> None:
        self.session = hub.session(name, path)
        check_inputs(self.session, name, {"source": self.source_shape,
                                          "target": (3, self.crop.size, self.crop.size)})
        self.host = hub.host

    def generate(self, frames: Sequence[np.ndarray],
                 jobs: Sequence[SwapJob]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        crop = self.crop
        subimages, matrices = pixel_boost.split_jobs(
            self.host, frames, jobs, crop.size, lambda frame, kps, side: align(frame, kps, crop.template, side))
        with self.host.stage("swap_pre"):
            target = crop.to_input(subimages)
            source = pixel_boost.job_identities(jobs)
        output = self.session.run(None, {"source": source, "target": target})[0]
        with self.host.stage("swap_post"):
            fakes = crop.from_output(output)
        return pixel_boost.merge_jobs(self.host, fakes, jobs), matrices


class ConvertedSwapper(Swapper):
    """Families fed the recognizer's embedding through a converter model of their own."""

    converter: ClassVar[str]  # its file in models/registry.py: input `input` (1, 512), output [0]
    normalise: ClassVar[bool]

    def __init__(self, name: str, hub: ModelHub, path: Path) -> None:
        super().__init__(name, hub, path)
        self.convert = hub.session(self.converter)
        check_inputs(self.convert, self.converter, {"input": (512,)})

    def identity(self, photo: SourcePhoto) -> np.ndarray:
        raw = embedding(photo, raw=True).reshape(1, -1).astype(np.float32)  # converters take the recognizer's own scale
        converted = self.convert.run(None, {"input": raw})[0][0]
        return normalised(converted) if self.normalise else converted.astype(np.float32)


class Hyperswap(Swapper):
    """hyperswap_1a/1b/1c_256 (FaceFusion, 2025): the normalised embedding; a second output, a
    mask, is not used."""

    crop = CropFormat("arcface_128", 256, HALF, HALF, signed_output=True)

    def identity(self, photo: SourcePhoto) -> np.ndarray:
        return embedding(photo).astype(np.float32)  # `Face.embedding` is L2-normalised already


class SimSwap256(ConvertedSwapper):
    """simswap_256 (neuralchen, 2020): ImageNet-normalised input, output in [0, 1]."""

    crop = CropFormat("arcface_112_v1", 256, IMAGENET_MEAN, IMAGENET_STD)
    converter, normalise = "crossface_simswap", True


class SimSwap512(ConvertedSwapper):
    """simswap_unofficial_512: as simswap_256 at 512 px, no normalisation of the input."""

    crop = CropFormat("arcface_112_v1", 512)
    converter, normalise = "crossface_simswap", True


class Ghost(ConvertedSwapper):
    """ghost_1/2/3_256 (ai-forever, 2022): the converted embedding as it comes, not normalised."""

    crop = CropFormat("arcface_112_v1", 256, HALF, HALF, signed_output=True)
    converter, normalise = "crossface_ghost", False


class HifiFace(ConvertedSwapper):
    """hififace_unofficial_256 (GuijiAI, 2021), on the mtcnn_512 template."""

    crop = CropFormat("mtcnn_512", 256, HALF, HALF, signed_output=True)
    converter, normalise = "crossface_hififace", True


class CropSourceSwapper(Swapper):
    """Families fed a crop of the source photo itself (RGB / 255) instead of an embedding."""

    source_crop: ClassVar[CropFormat]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.source_shape = (3, cls.source_crop.size, cls.source_crop.size)

    def identity(self, photo: SourcePhoto) -> np.ndarray:
        crop, _ = align(photo.image, photo.face.kps, self.source_crop.template, self.source_crop.size)
        return self.source_crop.to_input([crop])[0]


class BlendSwap(CropSourceSwapper):
    """blendswap_256 (mapooon, 2023): the source as a 112 px arcface_112_v2 crop."""

    crop = CropFormat("ffhq_512", 256)
    source_crop = CropFormat("arcface_112_v2", 112)


class UniFace(CropSourceSwapper):
    """uniface_256 (xc-csc101, 2022): the source as a 256 px ffhq_512 crop."""

    crop = CropFormat("ffhq_512", 256, HALF, HALF, signed_output=True)
    source_crop = CropFormat("ffhq_512", 256)


# A family (models/registry.py's `family` of a swapper file) -> its class.
FAMILIES: Mapping[str, Callable[[str, ModelHub, Path], SwapModel]] = {
    "inswapper": InSwapper,  # its own crop and latent (models/inswapper.py): insightface's reference, exactly
    "hyperswap": Hyperswap,
    "simswap_256": SimSwap256,
    "simswap_512": SimSwap512,
    "ghost": Ghost,
    "hififace": HifiFace,
    "blendswap": BlendSwap,
    "uniface": UniFace,
}

SWAP_MODELS: Mapping[str, Callable[[str, ModelHub, Path], SwapModel]] = {
    name: FAMILIES[spec.family] for name, spec in MODELS.items() if spec.role == "swapper" and spec.family is not None}

# The files `--frame-processor` names by file (inswapper's has its own processor name, `inswapper`).
FAMILY_FILES: tuple[str, ...] = tuple(name for name in SWAP_MODELS if MODELS[name].family != "inswapper")
