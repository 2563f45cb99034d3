"""InSwapper (inswapper_128), batched: every face of every frame in one ONNX call.

Each face is paired with its own client's latent (ArcFace embedding x emap, normalized,
computed once per source): its identity. The crop is insightface's own (`norm_crop2`), so the
swapped crops equal insightface's `INSwapper.get(..., paste_back=False)` (boosted: the same
crop at 128 x the boost, split; models/pixel_boost.py); they are pasted back
(models/paste_back.py) through the masks the client chose (models/masks.py), as every family's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
from insightface.utils import face_align

from . import pixel_boost
from .analysis import SourcePhoto, embedding
from .face import SwapJob
from .hub import ModelHub

INPUT_SIZE = 128


def load_emap(path: Path) -> np.ndarray:
    """The embedding map inswapper expects its latents in: the graph's last initializer."""
    model = onnx.load(str(path))
    return onnx.numpy_helper.to_array(model.graph.initializer[-1])


class InSwapper:
    """inswapper_128 as a swapper family (models/swap_models.py): its own crop and latent."""

    def __init__(self, name: str, hub: ModelHub, path: Path) -> None:
        self.session = hub.session(name, path)
        self.emap = load_emap(path)
        self.host = hub.host
        self._target_name, self._source_name = (i.name for i in self.session.get_inputs())

    def identity(self, photo: SourcePhoto) -> np.ndarray:
        source = embedding(photo)
        latent = (source / np.linalg.norm(source)).reshape(1, -1) @ self.emap
        return (latent / np.linalg.norm(latent)).reshape(-1).astype(np.float32)

    def generate(self, frames: Sequence[np.ndarray],
                 jobs: Sequence[SwapJob]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Swapped BGR crops for all jobs (one call), each 128 x its boost square, and each crop's
        alignment matrix. A boosted crop is `norm_crop2` at 128 x boost: insightface's
        `estimate_norm` scales its template by size / 128 for any size that is not a multiple
        of 112, and 256, 384 and 512 are not, so it is inswapper's crop at that size."""
        subimages, matrices = pixel_boost.split_jobs(self.host, frames, jobs, INPUT_SIZE, face_align.norm_crop2)
        with self.host.stage("swap_pre"):
            blob = cv2.dnn.blobFromImages(subimages, 1.0 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0.0, 0.0, 0.0),
                                          swapRB=True)
            latents = pixel_boost.job_identities(jobs)
        predicted = self.session.run(None, {self._target_name: blob, self._source_name: latents})[0]
        with self.host.stage("swap_post"):
            fakes = np.clip(255 * predicted.transpose(0, 2, 3, 1), 0, 255).astype(np.uint8)[..., ::-1]
        return pixel_boost.merge_jobs(self.host, fakes, jobs), matrices
