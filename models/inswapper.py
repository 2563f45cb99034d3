"""InSwapper (inswapper_128), batched: every face of every frame in one ONNX call.

Each face is paired with its own client's latent (ArcFace embedding x emap, normalized,
computed once per source): its identity. The crop is insightface's own (`norm_crop2`), so the
swapped crops equal insightface's `INSwapper.get(..., paste_back=False)`; they are pasted back
(models/paste_back.py) through the masks the client chose (models/masks.py), as every family's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
from insightface.utils import face_align

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

    def generate(self, frames: Sequence[np.ndarray], jobs: Sequence[SwapJob]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Swapped 128x128 BGR crops for all jobs (one call) and each crop's alignment matrix."""
        aligned = self.host.map("swap_pre", lambda job: face_align.norm_crop2(frames[job.frame_index], job.face.kps,
                                                                               INPUT_SIZE), jobs)
        crops, matrices = [crop for crop, _ in aligned], [matrix for _, matrix in aligned]
        with self.host.stage("swap_pre"):
            blob = cv2.dnn.blobFromImages(crops, 1.0 / 255.0, (INPUT_SIZE, INPUT_SIZE), (0.0, 0.0, 0.0), swapRB=True)
            latents = np.stack([job.identity for job in jobs]).astype(np.float32)
        predicted = self.session.run(None, {self._target_name: blob, self._source_name: latents})[0]
        with self.host.stage("swap_post"):
            fakes = np.clip(255 * predicted.transpose(0, 2, 3, 1), 0, 255).astype(np.uint8)[..., ::-1]
        return fakes, matrices
