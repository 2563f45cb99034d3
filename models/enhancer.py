"""Face enhancers (GFPGAN, GPEN-BFR, CodeFormer, RestoreFormer++; ONNX, optional), batched
over every face of the batch.

They restore the detail a 128 or 256 px swap leaves soft, at a high cost: use them on a GPU.
All see a face alike, so `ENHANCERS` describes each file by what differs: the template and
size of its crop (models/alignment.py), and whether it takes a fidelity `weight`. The crop
goes in as input `input`, (N, 3, S, S) float32, RGB, `(x / 255 - 0.5) / 0.5`; output [0] is
the restored crop in [-1, 1] (clipped, `(x + 1) / 2 * 255`, BGR): `CropFormat`'s half/half
signed format, the one the [-1, 1] swapper families use.

CodeFormer also takes `weight`, shape (1,) float64: its fidelity, 0 (the most restored) to
1 (the closest to the face it was given), fed only to a file that declares it (the
published CodeFormer does; an export without it loads and runs at its built-in fidelity, and
a file with it is fed whatever its name). It is one value per
model call, not one per face, so the faces of clients who chose different weights (the
`enhancer_weight` option) go in one call per distinct weight; every other enhancer runs
once for all faces of the batch.

The restored crop goes back through the inverse of its alignment, inside the face's ROI
only, through the masks of models/masks.py (as FaceFusion's enhancer: the box mask with the
client's blur and no padding, and the occlusion when the client chose it, so a hand in front
of the face is not restored over; all faces of the batch masked in one call of each mask
model), and by the client's blend amount `b` (the `enhancer_blend`
option): `addWeighted(frame, 1 - b, pasted, b)` where `pasted` is the mask's paste, which is
one blend of the frame towards the restored face by `b x mask`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .alignment import align
from .blend import blend_into
from .device import DeviceSession
from .face import Face
from .host import HostPool
from .masks import FaceMasker, MaskJob
from .paste_back import paste_region
from .swap_models import HALF, CropFormat, check_inputs


@dataclass(frozen=True)
class EnhancerModel:
    """What one enhancer file takes, beside what all of them share."""

    crop: CropFormat  # its template and size (the normalisation and output range are all the same)
    takes_weight: bool = False  # the published file declares CodeFormer's fidelity input `weight`

    def inputs(self, weight: bool) -> dict[str, tuple[int, ...]]:
        """Its inputs by name, each shape without the batch axis (`weight` has none: (1,) is one value)."""
        shapes: dict[str, tuple[int, ...]] = {"input": (3, self.crop.size, self.crop.size)}
        if weight:
            shapes["weight"] = ()
        return shapes


def _enhancer(template: str, size: int, takes_weight: bool = False) -> EnhancerModel:
    return EnhancerModel(CropFormat(template, size, HALF, HALF, signed_output=True), takes_weight)


# Every enhancer file (models/registry.py has its download and licence): each a `--frame-processor` name.
ENHANCERS: Mapping[str, EnhancerModel] = {
    **{f"gfpgan_{version}": _enhancer("ffhq_512", 512) for version in ("1.2", "1.3", "1.4")},
    "gpen_bfr_256": _enhancer("arcface_128", 256),
    **{f"gpen_bfr_{size}": _enhancer("ffhq_512", size) for size in (512, 1024, 2048)},
    "codeformer": _enhancer("ffhq_512", 512, takes_weight=True),
    "restoreformer_plus_plus": _enhancer("ffhq_512", 512),
}


# protocol/options.py's `enhancer_blend` (percent) and `enhancer_weight` defaults (a test holds them together).
DEFAULT_BLEND, DEFAULT_WEIGHT = 80.0, 0.5


@dataclass(frozen=True)
class EnhanceJob:
    """One face to restore, with its client's choices."""

    frame: np.ndarray  # restored in place
    face: Face
    blend: float  # 0..1: how much of the restored face goes over the frame
    weight: float = DEFAULT_WEIGHT  # CodeFormer's fidelity; the other enhancers have none
    options: Mapping[str, Any] = field(default_factory=dict)  # its client's live options: the masks it chose


class Enhancer:
    """One enhancer model over every face of a batch: one crop per face, the model called once
    (once per distinct weight for CodeFormer), each face pasted back by its own blend amount."""

    def __init__(self, name: str, session: DeviceSession, host: HostPool | None = None,
                 masker: FaceMasker | None = None) -> None:
        self.model = ENHANCERS[name]
        # `weight` is fed only to a file that declares it (an export of CodeFormer without it loads too).
        self.takes_weight = "weight" in {i.name for i in session.get_inputs()}
        check_inputs(session, name, self.model.inputs(self.takes_weight))
        self.session = session
        self.host = host or HostPool()
        self.masker = masker or FaceMasker(host=self.host)  # box masks only, without mask models

    def enhance(self, jobs: Sequence[EnhanceJob]) -> None:
        """Restore every job's face in its frame, in place (a frame's faces in their order)."""
        if not jobs:
            return
        crop = self.model.crop
        aligned = self.host.map("enhance_pre", lambda job: align(job.frame, job.face.kps, crop.template, crop.size),
                                jobs)
        with self.host.stage("enhance_pre"):
            blob = crop.to_input([made for made, _ in aligned])
        restored = np.empty((len(jobs), crop.size, crop.size, 3), np.uint8)
        for faces, feeds in self._calls(blob, jobs):
            output = self.session.run(None, feeds)[0]
            with self.host.stage("enhance_post"):
                restored[faces] = crop.from_output(output)
        masks = self.masker.masks([MaskJob(job.frame, matrix, face_crop, job.options)  # before any paste
                                   for job, (_, matrix), face_crop in zip(jobs, aligned, restored)])
        by_frame: dict[int, list[tuple[EnhanceJob, np.ndarray, np.ndarray, np.ndarray]]] = {}
        for job, (_, matrix), face_crop, mask in zip(jobs, aligned, restored, masks):
            by_frame.setdefault(id(job.frame), []).append((job, matrix, face_crop, mask))
        self.host.map("enhance_paste", self._paste_frame, list(by_frame.values()))

    def _calls(self, blob: np.ndarray,
               jobs: Sequence[EnhanceJob]) -> list[tuple[slice | list[int], dict[str, np.ndarray]]]:
        """The model calls of one batch, each with the faces it restores: all at once, or, for a
        model whose `weight` is one value per call, one call per distinct weight."""
        if not self.takes_weight:
            return [(slice(None), {"input": blob})]
        by_weight: dict[float, list[int]] = {}
        for index, job in enumerate(jobs):
            by_weight.setdefault(float(job.weight), []).append(index)
        return [(faces, {"input": blob[faces], "weight": np.array([weight], np.float64)})
                for weight, faces in by_weight.items()]

    def _paste_frame(self, restored: list[tuple[EnhanceJob, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """One frame's restored faces, in order (their ROIs may overlap)."""
        for job, matrix, face_crop, mask in restored:
            roi, warped, alpha = paste_region(job.frame.shape, matrix, face_crop, mask)
            if not roi.empty:
                blend_into(job.frame, roi, warped, alpha * np.float32(job.blend))
