"""Clips with known motion and the measurements of live swap quality (used by the benchmark and tests).

Every clip is made from a real photo moved by a known transform per frame, so the true
position of every keypoint is known: jitter and lag are measured against the truth, not
against another estimate. Identity and pose are measured on the swapped photo, against the
source's and the original face's, by the detector and by the embedded recognizer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np

from client.images import decode_jpeg, encode_jpeg
from models.analysis import FaceAnalyser, SourcePhoto
from models.face import Face
from models.frame import FrameContext
from models.recognizer import ArcFace, cosine

if TYPE_CHECKING:
    from models.hub import ModelHub


@dataclass
class Clip:
    frames: list[np.ndarray]
    transforms: list[np.ndarray]  # (2, 3) affine taking the base photo to each frame
    fps: float = 30.0


def _jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    return decode_jpeg(encode_jpeg(image, quality))


def make_clip(base: np.ndarray, transforms: Sequence[np.ndarray], seed: int = 0, quality: tuple[int, int] = (70, 90)) -> Clip:
    """Warp `base` by each transform and re-encode it as a camera would (varying JPEG noise)."""
    rng = np.random.default_rng(seed)
    height, width = base.shape[:2]
    frames = [
        _jpeg_roundtrip(cv2.warpAffine(base, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
                        int(rng.integers(*quality)))
        for m in transforms
    ]
    return Clip(frames, [np.asarray(m, np.float64) for m in transforms])


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy]], np.float64)


def still_with_drift(base: np.ndarray, frames: int = 90, amplitude: float = 0.6, seed: int = 0) -> Clip:
    """A still photo drifting by sub-pixel amounts (slowly, like a camera on a desk)."""
    t = np.arange(frames)
    return make_clip(base, [translation(amplitude * np.sin(i / 9), amplitude * np.cos(i / 13)) for i in t], seed)


def pan(base: np.ndarray, frames: int = 60, speed: float = 2.0, seed: int = 1) -> Clip:
    """Constant speed to the right, `speed` px per frame."""
    return make_clip(base, [translation(speed * i - speed * frames / 2, 0) for i in range(frames)], seed)


def wander(base: np.ndarray, frames: int = 90, seed: int = 2) -> Clip:
    """Moving, scaling (±10%) and rotating (±15°) about the centre."""
    height, width = base.shape[:2]
    centre = (width / 2, height / 2)
    transforms = []
    for i in range(frames):
        phase = 2 * np.pi * i / frames
        matrix = cv2.getRotationMatrix2D(centre, 15 * np.sin(phase), 1 + 0.1 * np.sin(2 * phase))
        matrix[:, 2] += (25 * np.sin(phase), 12 * np.cos(phase))
        transforms.append(matrix)
    return make_clip(base, transforms, seed)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def track_clip(analyser: FaceAnalyser, clip: Clip, smoothing: float, with_landmarks: bool = True,
               detect: Callable[[np.ndarray], list[Face]] | None = None) -> list[list[Face]]:
    """Faces to swap in every frame of `clip`, as one client streaming it would get them."""
    client = FrameContext(options={"smoothing": smoothing, "many_faces": True})
    results = []
    original = analyser.detector
    try:
        if detect is not None:
            analyser.detector = _OneByOne(detect)
        for index, frame in enumerate(clip.frames):
            this = client.frame(index, index / clip.fps)
            results.append(analyser.analyse_tracked([frame], [this], with_landmarks)[0])
    finally:
        analyser.detector = original
    return results


@dataclass
class _OneByOne:
    detect_one: Callable[[np.ndarray], list[Face]]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self.detect_one(image) for image in images]


def reference_faces(analyser: FaceAnalyser, base: np.ndarray) -> list[Face]:
    return analyser.detector.detect([base])[0]


def match(truth: Sequence[np.ndarray], faces: Sequence[Face]) -> list[Face | None]:
    """For each true keypoint set, the face whose keypoints are nearest (None if none is close)."""
    matched = []
    for kps in truth:
        eye = np.linalg.norm(kps[0] - kps[1])
        best = min(faces, key=lambda f: np.linalg.norm(f.kps - kps), default=None)
        matched.append(best if best is not None and np.abs(best.kps - kps).max() < eye / 2 else None)
    return matched


def keypoint_errors(clip: Clip, base_faces: Sequence[Face], tracked: Sequence[Sequence[Face]]) -> np.ndarray:
    """(frames, faces, 5, 2) tracked minus true keypoints (NaN where a face was not found)."""
    errors = np.full((len(clip.frames), len(base_faces), 5, 2), np.nan)
    for t, (matrix, faces) in enumerate(zip(clip.transforms, tracked)):
        truth = [apply(matrix, face.kps) for face in base_faces]
        for k, (true_kps, face) in enumerate(zip(truth, match(truth, faces))):
            if face is not None:
                errors[t, k] = face.kps - true_kps
    return errors


def jitter_px(errors: np.ndarray) -> float:
    """Std over time of each keypoint's error, averaged (the detector's bias does not count)."""
    return float(np.nanmean(np.nanstd(errors, axis=0)))


def lag_px(errors: np.ndarray, direction: np.ndarray, skip: int = 10) -> float:
    """How far keypoints trail the true position along the motion (after the first frames)."""
    along = errors[skip:] @ (direction / np.linalg.norm(direction))
    return float(-np.nanmean(along))


def dropouts(clip: Clip, base_faces: Sequence[Face], detected: Sequence[Sequence[Face]],
             swapped: Sequence[Sequence[Face]]) -> tuple[int, int]:
    """Frames where a face detected in the frames before and after was not swapped; and chances."""
    found = np.zeros((len(clip.frames), len(base_faces)), bool)
    kept = np.zeros_like(found)
    for t, matrix in enumerate(clip.transforms):
        truth = [apply(matrix, face.kps) for face in base_faces]
        found[t] = [f is not None for f in match(truth, detected[t])]
        kept[t] = [f is not None for f in match(truth, swapped[t])]
    around = found[:-2] & found[2:]
    return int(np.sum(around & ~kept[1:-1])), int(np.sum(around))


def face_flicker(outputs: Sequence[np.ndarray], clip: Clip, base_faces: Sequence[Face]) -> float:
    """Mean absolute difference of consecutive output frames inside the face boxes."""
    diffs = []
    for t in range(1, len(outputs)):
        for face in base_faces:
            box = apply(clip.transforms[t], face.box.reshape(2, 2)).reshape(-1)
            x1, y1, x2, y2 = np.round(box).astype(int)
            a, b = outputs[t - 1][y1:y2, x1:x2], outputs[t][y1:y2, x1:x2]
            diffs.append(np.abs(a.astype(np.int16) - b).mean())
    return float(np.mean(diffs))


def frame_to_frame_px(errors: np.ndarray) -> float:
    """How far keypoints move between consecutive frames beyond the true motion (per axis, px):
    the flicker a viewer sees on a still scene."""
    return float(np.nanmean(np.nanstd(np.diff(errors, axis=0), axis=0)) / np.sqrt(2))


def person_photo(photo: np.ndarray, face: Face, pad: float = 0.6) -> np.ndarray:
    """One person of a group photo as a source photo of their own: their box grown by `pad`."""
    x1, y1, x2, y2 = face.box
    grow = pad * max(x2 - x1, y2 - y1)
    x1, y1 = int(max(0, x1 - grow)), int(max(0, y1 - grow))
    x2, y2 = int(min(photo.shape[1], x2 + grow)), int(min(photo.shape[0], y2 + grow))
    return np.ascontiguousarray(photo[y1:y2, x1:x2])


def identity_judge(hub: ModelHub) -> ArcFace:
    """The recognizer that scores identity: the embedded MobileFaceNet, whatever recognizer the
    swapper runs with (inswapper is conditioned on w600k_r50's embeddings; scored by the same
    network, its swaps would look more like the source than they are)."""
    return ArcFace(hub.session("w600k_mbf"))


def source_embedding(judge: ArcFace, photo: SourcePhoto) -> np.ndarray:
    """The judge's embedding of the face a source photo gives (its largest)."""
    face = Face(box=photo.face.box, score=photo.face.score, kps=photo.face.kps)
    judge.annotate([photo.image], [[face]])
    assert face.embedding is not None
    return face.embedding


def identity_and_pose(analyser: FaceAnalyser, judge: ArcFace, original: np.ndarray, swapped: np.ndarray,
                      source_embeddings: Sequence[np.ndarray]) -> list[dict]:
    """Per face of `original` (detector order, each with its source's embedding): the cosine of
    the swapped face to its source and to the face it replaced, and how far its 5 keypoints
    moved, in percent of the eye distance (the pose kept)."""
    targets = analyser.analyse([original], [True], False)[0]
    outputs = analyser.analyse([swapped], [True], False)[0]
    judge.annotate([original, swapped], [targets, outputs])
    rows = []
    for target, source in zip(targets, source_embeddings, strict=True):
        output = min(outputs, key=lambda f: np.abs(f.kps - target.kps).sum())
        eye = np.linalg.norm(target.kps[0] - target.kps[1])
        rows.append({
            "to_source": cosine(output.embedding, source),
            "to_target": cosine(output.embedding, target.embedding),
            "pose_error_pct": float(np.linalg.norm(output.kps - target.kps, axis=1).mean() / eye * 100),
        })
    return rows


def identity_summary(rows: Sequence[dict]) -> dict:
    return {
        "faces": len(rows),
        "closer_to_source": sum(r["to_source"] > r["to_target"] for r in rows),
        "to_source_mean": float(np.mean([r["to_source"] for r in rows])),
        "to_target_mean": float(np.mean([r["to_target"] for r in rows])),
        "pose_error_pct_mean": float(np.mean([r["pose_error_pct"] for r in rows])),
        "pose_error_pct_max": float(max(r["pose_error_pct"] for r in rows)),
        "per_face": list(rows),
    }
