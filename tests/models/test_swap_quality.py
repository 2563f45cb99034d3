"""Identity and pose of swapped faces, through the processor the server runs: thresholds that a
swap painting the wrong face, in the wrong place, or nothing at all fails."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from models.choice import build_swapper
from models.frame import FrameContext, MappedFace
from perf import quality as q
from tests import media


@pytest.fixture(scope="module")
def swapper(hub):
    return build_swapper("classic", hub)


def swap(swapper, photo: np.ndarray, client: FrameContext) -> np.ndarray:
    return swapper.process([photo.copy()], [replace(client, options={"many_faces": True, **client.options})])[0]


def test_each_person_swapped_with_their_own_photo_stays_in_place_and_themselves(hub, swapper):
    group = media.group_photo()
    people = q.reference_faces(hub.analyser, group)
    photos = [q.person_photo(group, face) for face in people]
    face_map = tuple(MappedFace(embedding=swapper.identify(photo), sources={"classic": swapper.prepare_source(photo)})
                     for photo in photos)
    swapped = swap(swapper, group, FrameContext(face_map=face_map))
    inside, _ = media.region_changes(group, swapped, [face.box for face in people])
    assert min(inside) > 0.2, f"every face was repainted (with itself: little changes): {inside}"
    judge = q.identity_judge(hub)
    embeddings = [q.source_embedding(judge, hub.analyser.source_face(photo)) for photo in photos]
    rows = q.identity_and_pose(hub.analyser, judge, group, swapped, embeddings)
    assert max(r["pose_error_pct"] for r in rows) < 3.0, rows
    assert min(r["to_target"] for r in rows) > 0.9, rows


def test_tom_hanks_onto_t1_looks_more_like_tom_hanks_than_like_the_people_he_replaces(hub, swapper):
    group = media.group_photo()
    tom = cv2.imread(str(media.insightface_image("Tom_Hanks_54745.png")))
    swapped = swap(swapper, group, FrameContext(sources={"classic": swapper.prepare_source(tom)}))
    judge = q.identity_judge(hub)
    source = q.source_embedding(judge, hub.analyser.source_face(tom))
    summary = q.identity_summary(q.identity_and_pose(hub.analyser, judge, group, swapped, [source] * 6))
    assert summary["faces"] == 6
    assert summary["closer_to_source"] >= 4, summary
    assert summary["to_source_mean"] > summary["to_target_mean"] + 0.05, summary
    assert summary["pose_error_pct_max"] < 20, summary
