"""The masks of a batch of face crops: which pixels of each crop go back into its frame.

A face crop (a swapper's output, or an enhancer's) is pasted back through a mask in crop
space, 0..1: `frame * (1 - m) + crop * m` (models/paste_back.py warps crop and mask into the
face's ROI together). Each client chooses its masks (`face_mask_types`), and the final mask is
their minimum, clipped to [0, 1]: a pixel any mask keeps out stays as it was. No mask chosen
leaves the whole crop. The masks, as FaceFusion computes them:

- **box**: 1 inside a border of the crop, blurred. With `blur_amount = int(S * 0.5 *
  face_mask_blur)` for a crop of side S, the border is `max(blur_amount // 2, 1)` pixels, or
  `face_mask_padding` percent of S where larger (every side alike), and the blur's sigma is
  `blur_amount * 0.25` (none at blur 0). It depends on the crop's size only.
- **occlusion** (`--face-occluder`: xseg_1, xseg_2, xseg_3, DeepFaceLab's XSeg; or `many`,
  the minimum of the three outputs): on the TARGET crop, cut from the frame at 256 px by the
  swap's own matrix. Input `input` (N, 256, 256, 3) NHWC float32, BGR / 255; output [0]
  (N, 256, 256, 1): 1 where the face is visible, 0 on what covers it (a hand, glasses, hair).
  Resized to the crop, blurred (sigma 5), then `(clip(m, 0.5, 1) - 0.5) * 2`: the occluder
  and a band along its edge are exactly 0, so those pixels are left exactly as they were.
- **region** (`--face-parser`: bisenet_resnet_18/34, yakhyo's face parsers): on the crop
  being pasted (the SWAPPED face: the regions the client will see), resized to 512 px.
  Input `input` (N, 3, 512, 512), RGB / 255, ImageNet mean / std; output [0] (N, 19, 512,
  512), a score per label (`REGION_LABELS`; 0 is the background, 7-9 ears and earring,
  14-18 neck, necklace, cloth, hair, hat); a pixel is kept when its best label is one of the
  client's `face_mask_regions`. Resized to the crop, the same blur and ramp.

Batched: each mask model runs once per batch, for every face of every client that asked for
its mask (each occluder once, the parser once); the host work around them (crops, decoding)
goes through the host pool, timed per mask (`mask_box`, `mask_occlusion`, `mask_region`,
`mask_combine`: /stats and perf/pipeline_bench.py `--masks` show each). Crops may be any size
(a swapper's 128 or 256 px, a pixel-boosted 512, an enhancer's 512): a job is (frame, matrix,
crop), and the masks are computed at the models' own sizes from the frame and come back at
the crop's.

The enhancer masks its restored faces by the same call: `hub.masker.masks([MaskJob(frame,
matrix, restored_crop, options), ...])` for all its faces at once (the frame as it was before
the restored faces are pasted), then pastes each crop with its mask through
`paste_back.paste_region(frame.shape, matrix, crop, mask)`. Its options ask for the box (the
client's blur, no padding) and the client's occlusion, never the regions, which are the
swap's; so its processor offers `hub.masker.types` but the region as its `face_mask_types`
choices (`NeuralSwapper.option_choices` offers them all).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from .alignment import crop_with, rescaled
from .device import DeviceSession
from .host import HostPool
from .swap_models import IMAGENET_MEAN, IMAGENET_STD, check_inputs, check_output, rgb_blob

MASK_TYPES = ("box", "occlusion", "region")  # protocol/options.py's `face_mask_types` choices
DEFAULT_TYPES = ("box", "occlusion")  # those of them a server has, when a client has not chosen
DEFAULT_BLUR = 0.3
DEFAULT_PADDING = 0.0

# `--face-occluder` -> the occluder models it runs (their minimum is the occlusion).
OCCLUDERS: Mapping[str, tuple[str, ...]] = {"xseg_1": ("xseg_1",), "xseg_2": ("xseg_2",), "xseg_3": ("xseg_3",),
                                            "many": ("xseg_1", "xseg_2", "xseg_3")}
PARSERS = ("bisenet_resnet_18", "bisenet_resnet_34")  # `--face-parser`
OCCLUDER_SIZE, PARSER_SIZE, PARSER_LABELS = 256, 512, 19
# protocol/options.py's `face_mask_regions` choices -> the face parser's labels.
REGION_LABELS: Mapping[str, int] = {
    "skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5, "glasses": 6, "nose": 10,
    "mouth": 11, "upper-lip": 12, "lower-lip": 13,
}
EDGE_SIGMA = 5.0  # the blur of the occlusion and region masks, in crop pixels


@dataclass(frozen=True)
class MaskJob:
    """One face crop to mask."""

    frame: np.ndarray  # the face's frame as the target is (nothing pasted on it yet)
    matrix: np.ndarray  # the 2x3 frame -> crop affine that cut the face for `crop`
    crop: np.ndarray  # what will be pasted: the swapped (or restored) face, S x S x 3 BGR uint8
    options: Mapping[str, Any]  # its client's live options (protocol/options.py)


@functools.lru_cache(maxsize=64)
def box_mask(size: int, blur: float, padding: float) -> np.ndarray:
    """The box mask of a `size` crop (read-only: one array serves every face of that size)."""
    blur_amount = int(size * 0.5 * blur)
    border = max(max(blur_amount // 2, 1), int(size * padding / 100))
    mask = np.ones((size, size), np.float32)
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    if blur_amount > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), blur_amount * 0.25)
    mask.flags.writeable = False
    return mask


def soft_edge(mask: np.ndarray, size: int) -> np.ndarray:
    """A model's 0..1 mask at its own size -> the crop's: resized, blurred, and ramped so that
    what the model left out (below one half after the blur) is exactly 0."""
    resized = np.clip(cv2.resize(mask.astype(np.float32), (size, size)), 0.0, 1.0)
    return (np.clip(cv2.GaussianBlur(resized, (0, 0), EDGE_SIGMA), 0.5, 1.0) - 0.5) * 2.0


def kept_labels(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`isin(scores.argmax(0), labels)` for the labels where `keep` (a bool per label) is set,
    exactly (ties go to the first label, as argmax's), in a sixth of argmax's time over 19
    labels of 512 x 512 (measured: 3.5 ms against 21 ms a face): the best score among the kept
    labels against the best among the others, argmax only where they tie."""
    if keep.all() or not keep.any():
        return np.full(scores.shape[1:], keep.all())
    best_kept = np.maximum.reduce([scores[label] for label in np.flatnonzero(keep)])
    best_other = np.maximum.reduce([scores[label] for label in np.flatnonzero(~keep)])
    kept = best_kept > best_other
    tied = best_kept == best_other
    if tied.any():
        kept[tied] = keep[scores[:, tied].argmax(0)]
    return kept


class FaceMasker:
    """The masks of a device: the occluder and parser models the server loaded (none, some)."""

    def __init__(self, occluders: Sequence[DeviceSession] = (), parser: DeviceSession | None = None,
                 host: HostPool | None = None) -> None:
        for session in occluders:
            check_inputs(session, session.step, {"input": (OCCLUDER_SIZE, OCCLUDER_SIZE, 3)})
            check_output(session, session.step, (OCCLUDER_SIZE, OCCLUDER_SIZE, 1))
        if parser is not None:
            check_inputs(parser, parser.step, {"input": (3, PARSER_SIZE, PARSER_SIZE)})
            check_output(parser, parser.step, (PARSER_LABELS, PARSER_SIZE, PARSER_SIZE))
        self.occluders = tuple(occluders)
        self.parser = parser
        self.host = host or HostPool()

    @property
    def types(self) -> tuple[str, ...]:
        """The mask types this device computes: box always, occlusion and region with their models."""
        return tuple(kind for kind, present in zip(MASK_TYPES, (True, bool(self.occluders), self.parser is not None))
                     if present)

    def chosen(self, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The mask types a client's options ask for (the defaults this device has, when none)."""
        if "face_mask_types" not in options:
            return tuple(kind for kind in DEFAULT_TYPES if kind in self.types)
        asked = tuple(options["face_mask_types"])
        missing = [kind for kind in asked if kind not in self.types]
        if missing:
            raise ValueError(f"face_mask_types: {', '.join(missing)} not computed here (masks: {', '.join(self.types)};"
                             " occlusion needs --face-occluder, region --face-parser)")
        return asked

    def masks(self, jobs: Sequence[MaskJob]) -> list[np.ndarray]:
        """Each job's mask at its crop's size (float32 0..1), per its client's options; each mask
        model once for all the jobs that need it."""
        chosen = [self.chosen(job.options) for job in jobs]
        parts: list[list[np.ndarray]] = [[] for _ in jobs]
        boxed = [i for i, kinds in enumerate(chosen) if "box" in kinds]
        for i, mask in zip(boxed, self.host.map("mask_box", lambda i: _box_of(jobs[i]), boxed)):
            parts[i].append(mask)
        occluded = [i for i, kinds in enumerate(chosen) if "occlusion" in kinds]
        if occluded:
            for i, mask in zip(occluded, self._occlusion([jobs[i] for i in occluded])):
                parts[i].append(mask)
        parsed = [i for i, kinds in enumerate(chosen) if "region" in kinds]
        if parsed:
            for i, mask in zip(parsed, self._regions([jobs[i] for i in parsed])):
                parts[i].append(mask)
        return self.host.map("mask_combine", lambda i: _combined(parts[i], jobs[i].crop.shape[0]), range(len(jobs)))

    def _occlusion(self, jobs: Sequence[MaskJob]) -> list[np.ndarray]:
        crops = self.host.map("mask_occlusion", _target_crop, jobs)
        with self.host.stage("mask_occlusion"):
            blob = np.stack(crops).astype(np.float32) / np.float32(255.0)
        outputs = [session.run(None, {"input": blob})[0] for session in self.occluders]
        with self.host.stage("mask_occlusion"):
            visible = np.minimum.reduce(outputs) if len(outputs) > 1 else outputs[0]
        return self.host.map("mask_occlusion", lambda item: soft_edge(visible[item[0], ..., 0], item[1].crop.shape[0]),
                             list(enumerate(jobs)))

    def _regions(self, jobs: Sequence[MaskJob]) -> list[np.ndarray]:
        with self.host.stage("mask_region"):
            blob = rgb_blob([job.crop for job in jobs], PARSER_SIZE, IMAGENET_MEAN, IMAGENET_STD)
        assert self.parser is not None
        scores = self.parser.run(None, {"input": blob})[0]

        def decode(item: tuple[int, MaskJob]) -> np.ndarray:
            index, job = item
            keep = np.zeros(PARSER_LABELS, bool)
            keep[[REGION_LABELS[name] for name in job.options.get("face_mask_regions", REGION_LABELS)]] = True
            return soft_edge(kept_labels(scores[index], keep).astype(np.float32), job.crop.shape[0])

        return self.host.map("mask_region", decode, list(enumerate(jobs)))


def _target_crop(job: MaskJob) -> np.ndarray:
    """The occluder's view of the target: the swap's own crop of the frame, at the occluder's size."""
    return crop_with(job.frame, rescaled(job.matrix, job.crop.shape[0], OCCLUDER_SIZE), OCCLUDER_SIZE)


def _box_of(job: MaskJob) -> np.ndarray:
    options = job.options
    return box_mask(job.crop.shape[0], float(options.get("face_mask_blur", DEFAULT_BLUR)),
                    float(options.get("face_mask_padding", DEFAULT_PADDING)))


def _combined(parts: Sequence[np.ndarray], size: int) -> np.ndarray:
    if not parts:
        return np.ones((size, size), np.float32)
    return np.clip(np.minimum.reduce(parts), 0.0, 1.0)
