"""Per-client face tracks: association across frames, One-Euro smoothing, short-miss holding.

Detectors jitter by a pixel or two from frame to frame and miss a face now and then; a
swap painted from raw detections flickers and drops out. Each client gets a `FaceTracker`
(state of its own session, so two clients' tracks never mix) that
- matches the faces of a frame to its tracks by box IoU,
- smooths every track's box, keypoints and landmarks with a One-Euro filter (strong
  smoothing at rest, little lag in fast motion: the cutoff rises with speed),
- keeps a track through a few missed detections, so a face is still swapped then (but never
  for longer than `HOLD_MAX_S`: a client served a few frames a second under load has moved
  between its frames, and a held face would be a ghost swapped where nobody is),
- and between detections (`detect_every` > 1) moves each track with its landmarks: a
  similarity fitted from the previous to the new 106 landmarks carries box and keypoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from .face import Face


MIN_CUTOFF_HZ = 0.3  # smoothing at rest, at strength 1 (tuned with perf/quality_bench.py)
BETA = 0.4  # how fast the cutoff rises with the face's speed (per px/s), at strength 1
D_CUTOFF_HZ = 0.5  # smoothing of the speed estimate (lower: calmer at rest, slower to open up)
HOLD_MAX_S = 0.25  # a face unseen for longer is let go, however few frames that was


@dataclass
class OneEuroFilter:
    """Casiez et al.'s One-Euro filter over a set of 2-D points (pixels, seconds).

    One cutoff for the whole set, from the speed of its mean: a face moves as a whole, and
    averaging the points' velocities cancels most of their detection noise, so the filter
    stays calm at rest (per-point speeds would read noise as motion) yet opens up as soon
    as the face really moves.
    """

    min_cutoff: float = MIN_CUTOFF_HZ
    beta: float = BETA
    d_cutoff: float = D_CUTOFF_HZ
    _x: np.ndarray | None = None
    _dx: np.ndarray | None = None
    _t: float = 0.0

    @property
    def velocity(self) -> np.ndarray | None:
        """The smoothed speed of every point (px/s; None before the first): what opens the
        cutoff in motion and what `coast` carries the points on by."""
        return None if self._dx is None else self._dx.copy()

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.astype(np.float64), np.zeros(x.shape), t
            return x
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        speed = float(np.linalg.norm(self._dx.reshape(-1, 2).mean(axis=0)))
        cutoff = self.min_cutoff + self.beta * speed
        self._x = self._x + self._alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.astype(np.float32)

    def coast(self, t: float) -> np.ndarray | None:
        """Where the signal is expected at `t` if it kept its current speed (no measurement)."""
        if self._x is None or self._dx is None or t <= self._t:
            return None
        self._x = self._x + self._dx * (t - self._t)
        self._t = t
        return self._x.astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    face: Face  # smoothed, as swapped
    raw: Face  # as last measured
    missed: int = 0
    seen_at: float = -math.inf  # when it was last measured
    filters: dict[str, OneEuroFilter] = field(default_factory=dict)
    embedding: np.ndarray | None = None  # who this is: computed once per track, when needed

    def coast(self, t: float) -> None:
        """A missed detection: carry the face on at its current speed, so a held face keeps up."""
        self.missed += 1
        moved = {name: f.coast(t) for name, f in self.filters.items()}
        if any(value is None for value in moved.values()) or "box" not in moved:
            return
        self.face = Face(box=moved["box"].reshape(4), score=self.face.score, kps=moved["kps"],
                         landmarks=moved.get("landmarks"), embedding=self.embedding)

    def smooth(self, raw: Face, t: float, strength: float) -> None:
        """Take a new measurement; `strength` 0 passes it through, larger smooths more."""
        self.raw, self.missed, self.seen_at = raw, 0, t
        if strength <= 0:
            self.face, self.filters = raw, {}
            raw.embedding = self.embedding
            return
        parts = {"box": raw.box.reshape(2, 2), "kps": raw.kps}
        if raw.landmarks is not None:
            parts["landmarks"] = raw.landmarks
        smoothed = {
            name: self.filters.setdefault(name, OneEuroFilter(MIN_CUTOFF_HZ / strength, BETA / strength, D_CUTOFF_HZ))(value, t)
            for name, value in parts.items()
        }
        self.face = Face(box=smoothed["box"].reshape(4), score=raw.score, kps=smoothed["kps"],
                         landmarks=smoothed.get("landmarks"), embedding=self.embedding)


@dataclass
class FaceTracker:
    strength: float = 1.0  # smoothing: 0 off, 1 default, larger smoother (and laggier)
    hold_frames: int = 3  # a track missed for this many detections in a row is still swapped
    min_iou: float = 0.3
    tracks: list[Track] = field(default_factory=list)
    frames_since_detection: int = 0
    last_time: float = -math.inf

    def needs_detection(self, detect_every: int) -> bool:
        return not self.tracks or self.frames_since_detection + 1 >= detect_every

    def unidentified(self) -> list[Track]:
        return [track for track in self.tracks if track.embedding is None]

    def predicted_faces(self) -> list[Face]:
        """Where to look for the tracks' faces in a frame without detection: their last place."""
        return [track.raw for track in self.tracks]

    def update(self, detections: Sequence[Face], t: float) -> list[Face]:
        """Faces to swap in the frame at time `t`: matched and new tracks, and held ones."""
        if t < self.last_time:  # a frame overtaken by a newer one of the same client: no state change
            return list(detections)
        self.last_time = t
        self.frames_since_detection = 0
        pairs = sorted(
            ((box_iou(track.raw.box, face.box), ti, fi) for ti, track in enumerate(self.tracks)
             for fi, face in enumerate(detections)),
            reverse=True,
        )
        matched_tracks, matched_faces = set(), set()
        for iou, ti, fi in pairs:
            if iou < self.min_iou:
                break
            if ti in matched_tracks or fi in matched_faces:
                continue
            self.tracks[ti].smooth(detections[fi], t, self.strength)
            matched_tracks.add(ti)
            matched_faces.add(fi)
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.coast(t)
        self.tracks = [track for track in self.tracks
                       if track.missed <= self.hold_frames and t - track.seen_at <= HOLD_MAX_S]
        for fi, face in enumerate(detections):
            if fi not in matched_faces:
                track = Track(face=face, raw=face)
                track.smooth(face, t, self.strength)
                self.tracks.append(track)
        return [track.face for track in self.tracks]

    def follow(self, relocated: Sequence[Face], t: float) -> list[Face]:
        """A frame without detection: `relocated[i]` has fresh landmarks for track i."""
        if t < self.last_time:
            return [track.face for track in self.tracks]
        self.last_time = t
        self.frames_since_detection += 1
        for track, face in zip(self.tracks, relocated):
            moved = _carry(track.raw, face)
            if moved is not None:
                track.smooth(moved, t, self.strength)
        return [track.face for track in self.tracks]


def _carry(previous: Face, current: Face) -> Face | None:
    """Move `previous`'s box and keypoints by the similarity between the two landmark sets."""
    if previous.landmarks is None or current.landmarks is None:
        return None
    matrix, _ = cv2.estimateAffinePartial2D(previous.landmarks, current.landmarks)
    if matrix is None:
        return None
    kps = previous.kps @ matrix[:, :2].T + matrix[:, 2]
    corners = np.array([previous.box[:2], previous.box[2:]]) @ matrix[:, :2].T + matrix[:, 2]
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
    return Face(box=box, score=previous.score, kps=kps.astype(np.float32), landmarks=current.landmarks,
                embedding=previous.embedding)
