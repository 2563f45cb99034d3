"""Face analysis shared by every processor of a server: detect, then landmarks / embeddings.

One instance per device holds the sessions; all of its methods take whole batches.

Several batches run at once (only their model calls take turns on the device), and two
of them may hold frames of the same client. A client's face tracks must still move frame
after frame, in the order the frames were taken: each frame carries its `order`, and its
analysis waits until the client's earlier frames are analysed or out of the pipeline
(`FrameOrder`). Earlier batches never wait for later ones, and the device serves the
oldest batch first, so the wait always ends.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

import cv2
import numpy as np

from . import work
from .face import Face
from .frame import FrameContext
from .host import HostPool
from .landmarks import Landmarks106
from .recognizer import ArcFace
from .tracking import FaceTracker

log = logging.getLogger(__name__)

SOURCE_PADDING = 0.5  # tight source crops (a face filling the photo) need context to be detected


class NoFaceError(Exception):
    """The source photo has no detectable face; the message is for the user."""


@dataclass(frozen=True)
class SourcePhoto:
    """A source photo ready to use: padded for context, with its chosen face located."""

    image: np.ndarray  # the photo with a replicated border (coordinates below refer to it)
    face: Face  # the largest face, with landmarks and embedding
    valid: np.ndarray  # uint8 mask: 255 where `image` has real pixels, 0 on the added border
    note: str = ""  # for the user, when the choice was not obvious


def embedding(photo: SourcePhoto, raw: bool = False) -> np.ndarray:
    """The recognizer's embedding of the source face (`raw`: before normalising), for the
    swappers that need one (the MIT-only pipeline, with no recognizer, has none)."""
    found = photo.face.raw_embedding if raw else photo.face.embedding
    if found is None:
        raise ValueError("this swapper needs the recognizer's embedding of the source face")
    return found


class Detector(Protocol):
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


ANALYSED = "analysed"  # key of a frame's FrameAnalysis in its scratch: what its later processors reuse
TURN_TIMEOUT_S = 30.0  # a frame lost by a bug must not stop its client's stream for good
ORDER = "frame_order"  # key of a client's FrameOrder in its state


@dataclass(frozen=True)
class FrameAnalysis:
    """The faces of one frame, as the first processor that needed them found them."""

    with_landmarks: bool
    faces: list[Face]


class FrameOrder:
    """Analysis of one client's frames in the order they were taken, whichever batch holds them."""

    def __init__(self) -> None:
        self._done = -1  # every frame up to this order is analysed or gone
        self._condition = threading.Condition()

    def wait_turn(self, order: int) -> None:
        start = time.monotonic()
        with self._condition:
            if not self._condition.wait_for(lambda: self._done >= order - 1, timeout=TURN_TIMEOUT_S):
                log.error("frame %d waited %.0f s for the client's frame %d, which never finished: going on",
                          order, TURN_TIMEOUT_S, self._done + 1)
        account = work.current()
        if account is not None:
            account.blocked_s += time.monotonic() - start

    def done(self, order: int) -> None:
        with self._condition:
            if order > self._done:
                self._done = order
                self._condition.notify_all()


def frame_order(client: FrameContext) -> FrameOrder:
    return client.state.setdefault(ORDER, FrameOrder())


def frames_finished(clients: Sequence[FrameContext]) -> None:
    """The pipeline is done with these frames (analysed or not): their clients' next frames may go."""
    for client in clients:
        frame_order(client).done(client.order)


def _analysed(client: FrameContext) -> FrameAnalysis | None:
    """This frame's analysis, if an earlier processor of the frame has made it."""
    return client.scratch.get(ANALYSED)


def _keep_largest(faces: list[Face], many: bool) -> list[Face]:
    return faces if many or not faces else [max(faces, key=lambda f: f.area)]


@dataclass
class FaceAnalyser:
    """Without `landmarks` and `recognizer` (the MIT-only pipeline), faces have keypoints only."""

    detector: Detector
    landmarks: Landmarks106 | None
    recognizer: ArcFace | None
    detect_every: int = 1  # run the detector on every k-th frame of a client; track in between
    hold_frames: int = 3  # keep swapping a face the detector lost for this many frames
    host: HostPool = field(default_factory=HostPool)

    def analyse_tracked(self, images: Sequence[np.ndarray], clients: Sequence[FrameContext], with_landmarks: bool,
                        identify: Sequence[bool] = ()) -> list[list[Face]]:
        """Faces to swap per image, through each client's own tracks: one call per model step.

        A frame is analysed once, whatever the number of processors that ask: a later
        processor of the same frame (the enhancer after a swapper) gets the faces the first
        one got (the first leaves them in the frame's `scratch` under `ANALYSED`), so it
        follows the same smoothed, held tracks and costs no second detection.
        Where `identify[i]`, every track of that client gets an embedding, once in its life.
        """
        earlier = [_analysed(client) for client in clients]
        fresh = [i for i, analysis in enumerate(earlier) if analysis is None]
        firsts: dict[int, FrameContext] = {}  # per client, its first frame here (a job has several)
        for i in sorted(fresh, key=lambda i: clients[i].order):
            firsts.setdefault(id(frame_order(clients[i])), clients[i])
        for client in firsts.values():
            frame_order(client).wait_turn(client.order)  # its later frames here follow it in this batch
        try:
            return self._analyse_in_turn(images, clients, with_landmarks, identify, earlier, fresh)
        finally:
            frames_finished([clients[i] for i in fresh])

    def _analyse_in_turn(self, images: Sequence[np.ndarray], clients: Sequence[FrameContext], with_landmarks: bool,
                         identify: Sequence[bool], earlier: list[FrameAnalysis | None],
                         fresh: list[int]) -> list[list[Face]]:
        tracked, has_landmarks = self._track([images[i] for i in fresh], [clients[i] for i in fresh], with_landmarks)
        made = dict(zip(fresh, tracked))
        analyses = [analysis or FrameAnalysis(has_landmarks, made[i])
                    for i, (analysis, client) in enumerate(zip(earlier, clients))]
        # A frame analysed without landmarks by an earlier processor (an enhancer placed before
        # a swapper) gets them now, on the same faces: its tracks moved once and stay as they
        # are, so these landmarks are not smoothed (the usual order, swapper first, smooths them).
        lacking = [i for i, analysis in enumerate(analyses) if with_landmarks and not analysis.with_landmarks]
        if lacking and self.landmarks is not None:
            self.landmarks.annotate([images[i] for i in lacking], [analyses[i].faces for i in lacking])
            for i in lacking:
                analyses[i] = replace(analyses[i], with_landmarks=True)
        for client, analysis in zip(clients, analyses):
            client.scratch[ANALYSED] = analysis
        wanted = [i for i, want in enumerate(identify) if want]
        self._identify_new_tracks(images, [clients[i].state["tracker"] for i in wanted], wanted)
        return [_keep_largest(analysis.faces, client.options.get("many_faces", True))
                for analysis, client in zip(analyses, clients)]

    def _track(self, images: Sequence[np.ndarray], clients: Sequence[FrameContext],
               with_landmarks: bool) -> tuple[list[list[Face]], bool]:
        """Every tracked face per image, and whether they all have landmarks. Frames due for
        detection run the detector (one call for all of them); the others look for each track's
        face where it was and move it by its new landmarks, so the landmark model runs for them
        whatever `with_landmarks` says."""
        trackers = []
        for client in clients:
            tracker = client.state.setdefault("tracker", FaceTracker())
            tracker.strength = float(client.options.get("smoothing", 1.0))
            tracker.hold_frames = self.hold_frames
            trackers.append(tracker)
        every = self.detect_every if self.landmarks is not None else 1  # following needs landmarks
        detect = [i for i, tracker in enumerate(trackers) if tracker.needs_detection(every)]
        follow = [i for i in range(len(images)) if i not in set(detect)]
        detections = self.detector.detect([images[i] for i in detect])
        predicted = [[Face(box=f.box, score=f.score, kps=f.kps) for f in trackers[i].predicted_faces()] for i in follow]
        if self.landmarks is not None:
            with_landmarks = with_landmarks or every > 1  # following a face later needs its landmarks now
            landmark_images = ([images[i] for i in detect] if with_landmarks else []) + [images[i] for i in follow]
            self.landmarks.annotate(landmark_images, (detections if with_landmarks else []) + predicted)
        faces: list[list[Face]] = [[] for _ in images]
        detected, followed = dict(zip(detect, detections)), dict(zip(follow, predicted))
        with self.host.stage("tracking"):  # in each client's frame order: a job has several here
            for i in sorted(range(len(images)), key=lambda i: clients[i].order):
                if i in detected:
                    faces[i] = trackers[i].update(detected[i], clients[i].time)
                else:
                    faces[i] = trackers[i].follow(followed[i], clients[i].time)
        return faces, with_landmarks or self.landmarks is None

    def _identify_new_tracks(self, images: Sequence[np.ndarray], trackers: Sequence[FaceTracker],
                             indices: Sequence[int]) -> None:
        """One recognizer call for the tracks without an identity (of the clients that need them)."""
        if self.recognizer is None:
            return
        tracks = [tracker.unidentified() for tracker in trackers]
        self.recognizer.annotate([images[i] for i in indices], [[t.raw for t in pending] for pending in tracks])
        for track in (t for pending in tracks for t in pending):
            track.embedding = track.face.embedding = track.raw.embedding

    @property
    def can_identify(self) -> bool:
        return self.recognizer is not None

    def identify(self, image: np.ndarray) -> np.ndarray:
        """Who the (largest) face in a reference photo is: its embedding."""
        embedding = self.source_face(image).face.embedding
        assert embedding is not None, "identify() needs a recognizer"
        return embedding

    def analyse(self, images: Sequence[np.ndarray], many_faces: Sequence[bool], with_landmarks: bool) -> list[list[Face]]:
        """Faces of every image (only the largest where `many_faces` is off), one call per model."""
        faces = [_keep_largest(found, many) for found, many in zip(self.detector.detect(images), many_faces)]
        if with_landmarks and self.landmarks is not None:
            self.landmarks.annotate(images, faces)
        return faces

    def source_face(self, image: np.ndarray) -> SourcePhoto:
        """The face to wear: the largest in the photo, with landmarks and embedding."""
        pad = int(SOURCE_PADDING * max(image.shape[:2]))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        valid = np.zeros(padded.shape[:2], np.uint8)
        valid[pad:pad + image.shape[0], pad:pad + image.shape[1]] = 255
        faces = self.detector.detect([padded])[0]
        if not faces:
            raise NoFaceError("No face detected in the source image; use a clear, front-facing photo")
        face = max(faces, key=lambda f: f.area)
        if self.landmarks is not None:
            self.landmarks.annotate([padded], [[face]])
        if self.recognizer is not None:
            self.recognizer.annotate([padded], [[face]])
        note = f"{len(faces)} faces found in the source image; using the largest" if len(faces) > 1 else ""
        return SourcePhoto(padded, face, valid, note)
