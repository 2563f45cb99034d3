"""The batched inswapper path equals insightface's reference `INSwapper.get`, pasted through
the box mask.

insightface's own paste (`paste_back=True`) blends through a mask of its own (a white square
warped into the frame, eroded and blurred there); the pipeline pastes every swapper through
the masks its client chose (models/masks.py), box alone by default here: FaceFusion's static
box mask. So the reference is insightface's crop, latent and model output (`paste_back=False`:
the swapped crop and its matrix), pasted with full-frame warps through the box mask written
below from its published recipe, `frame * (1 - m) + fake * m`.

No real inswapper weights exist here: the graph is built in the test with the real model's
input/output names, shapes and emap initializer (perf/synthetic_models.py).
"""
from __future__ import annotations

import contextlib
import io
import cv2
import numpy as np
import pytest
from insightface.app.common import Face as ReferenceFace
from insightface.model_zoo.inswapper import INSwapper

from models.frame import FrameContext
from models.processors import NeuralSwapper
from perf.synthetic_models import inswapper_like
from tests import media
from tests.models.published import box_mask

NO_EXTRAS = {"many_faces": True, "opacity": 1.0, "mouth_mask": 0, "color_correction": False, "face_mask_types": ["box"]}



@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return inswapper_like(tmp_path_factory.mktemp("models") / "inswapper_128.onnx")


@pytest.fixture(scope="module")
def swapper(hub, model_path):
    return NeuralSwapper(hub, model_path=model_path)


@pytest.fixture(scope="module")
def reference(model_path):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its input shape
        return INSwapper(model_file=str(model_path))


def source_photos() -> list[np.ndarray]:
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return [tom, astronaut]



def reference_output(reference, analyser, frame: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """insightface's swap of every face (its crop, latent and output), each pasted in turn
    through the box mask with full-frame warps."""
    output = frame.copy()
    size = (frame.shape[1], frame.shape[0])
    for face in analyser.analyse([frame], [True], False)[0]:
        fake, matrix = reference.get(frame, ReferenceFace(kps=face.kps), ReferenceFace(embedding=embedding),
                                     paste_back=False)
        inverse = cv2.invertAffineTransform(matrix)
        warped = cv2.warpAffine(fake, inverse, size, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        mask = cv2.warpAffine(box_mask(fake.shape[0]), inverse, size)[..., None]
        output = (output * (1.0 - mask) + warped * mask).astype(np.uint8)
    return output


def test_batch_of_several_clients_and_faces_matches_the_reference(hub, swapper, reference):
    sources = [swapper.prepare_source(photo) for photo in source_photos()]
    assert np.linalg.norm(sources[0].embedding - sources[1].embedding) > 0.5, "two different people"
    frames = [media.group_photo(), cv2.flip(media.group_photo(), 1), media.group_photo(480, 360)]
    owners = [0, 1, 0]  # three frames from two clients in one batch
    contexts = [FrameContext(sources={"inswapper": sources[owner]}, options=dict(NO_EXTRAS)) for owner in owners]
    outputs = swapper.process([f.copy() for f in frames], contexts)
    for frame, owner, output in zip(frames, owners, outputs):
        expected = reference_output(reference, hub.analyser, frame, sources[owner].embedding)
        diff = np.abs(output.astype(np.int16) - expected.astype(np.int16))
        assert np.count_nonzero(frame != expected) > 1000, "the reference changed the faces"
        assert diff.mean() < 0.05, diff.mean()
        assert np.percentile(diff, 99.9) <= 2, "differences are rounding only"


def test_frames_without_a_source_or_faces_are_untouched(swapper):
    frames = [media.group_photo().copy(), np.full((240, 320, 3), 70, np.uint8)]
    source = swapper.prepare_source(source_photos()[0])
    contexts = [FrameContext(sources={}, options=dict(NO_EXTRAS)),
                FrameContext(sources={"inswapper": source}, options=dict(NO_EXTRAS))]
    outputs = swapper.process([f.copy() for f in frames], contexts)
    for frame, output in zip(frames, outputs):
        assert np.array_equal(frame, output)


def test_batch_dimension_was_made_symbolic(swapper):
    target = swapper.models["inswapper"].session.get_inputs()[0]
    assert not isinstance(target.shape[0], int), target.shape
