"""Live swap quality, measured: jitter, flicker, lag, dropouts, identity, pose, cost.

Clips are made from real photos moved by known transforms (perf/quality.py), so every
keypoint's true position is known. Each row is one setting; smoothing on vs off side by
side, and detection every frame vs every k-th frame.

    .venv/bin/python perf/quality_bench.py [--json out.json]

Columns:
  jitter      std over time of keypoint error (px), the known drift removed (includes the
              detector's slow sub-pixel bias, which no filter removes)
  f2f         frame-to-frame keypoint jitter on the still clip (px): what flickers on screen
  flicker     mean |difference| of consecutive output frames inside the faces (grey levels)
  lag         how far keypoints trail the truth at 2 px/frame (px)
  drops       faces not swapped in a frame although detected in the frames around it
  ms/frame    analysis (detect + landmarks + tracking) per frame, one client
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import classic  # noqa: E402
from models.processors import ModelHub, ModelSettings  # noqa: E402
from models.recognizer import cosine  # noqa: E402
from models.tracking import FaceTracker  # noqa: E402
from perf import quality as q  # noqa: E402


def sample_photos() -> tuple[np.ndarray, np.ndarray]:
    import insightface

    images = Path(insightface.__file__).parent / "data" / "images"
    group = cv2.resize(cv2.imread(str(images / "t1.jpg")), (640, 480), interpolation=cv2.INTER_AREA)
    return group, cv2.imread(str(images / "Tom_Hanks_54745.png"))


def swap_clip(analyser, clip: q.Clip, tracked: list, source: classic.ClassicSource) -> list[np.ndarray]:
    outputs = []
    for frame, faces in zip(clip.frames, tracked):
        out = frame.copy()
        for face in faces:
            classic.swap_face(out, face, source, {"color_correction": True})
        outputs.append(out)
    return outputs


def timed_track(analyser, clip: q.Clip, smoothing: float) -> tuple[list, float]:
    start = time.perf_counter()
    tracked = q.track_clip(analyser, clip, smoothing)
    return tracked, (time.perf_counter() - start) / len(clip.frames) * 1000


def tracking_cost_ms(analyser, clip: q.Clip, repeats: int = 5) -> float:
    """Added time per frame of tracking and smoothing: the tracker's own work on real detections
    (timed apart from the models, whose time does not change, so machine noise cannot hide it)."""
    detections = analyser.analyse(clip.frames, [True] * len(clip.frames), True)
    best = float("inf")
    for _ in range(repeats):
        tracker = FaceTracker()
        start = time.perf_counter()
        for index, faces in enumerate(detections):
            tracker.update(faces, index / clip.fps)
        best = min(best, (time.perf_counter() - start) / len(detections) * 1000)
    return best


def identity_and_pose(analyser, group: np.ndarray, tom: np.ndarray, source: classic.ClassicSource) -> dict:
    """Every swapped face should look like the source by embedding, yet keep the target's pose."""
    source_face = analyser.source_face(tom).face
    targets = analyser.analyse([group], [True], True)[0]
    analyser.recognizer.annotate([group], [targets])
    output = group.copy()
    for face in targets:
        classic.swap_face(output, face, source, {"color_correction": True})
    swapped = analyser.analyse([output], [True], False)[0]
    analyser.recognizer.annotate([output], [swapped])
    rows = []
    for target in targets:
        face = min(swapped, key=lambda f: np.abs(f.kps - target.kps).sum())
        eye = np.linalg.norm(target.kps[0] - target.kps[1])
        rows.append({
            "to_source": cosine(face.embedding, source_face.embedding),
            "to_target": cosine(face.embedding, target.embedding),
            "pose_error_pct": float(np.linalg.norm(face.kps - target.kps, axis=1).mean() / eye * 100),
        })
    return {
        "faces": len(rows),
        "closer_to_source": sum(r["to_source"] > r["to_target"] for r in rows),
        "to_source_mean": float(np.mean([r["to_source"] for r in rows])),
        "to_target_mean": float(np.mean([r["to_target"] for r in rows])),
        "pose_error_pct_max": float(max(r["pose_error_pct"] for r in rows)),
        "per_face": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    hub = ModelHub(ModelSettings(threads=1))
    analyser = hub.analyser
    group, tom = sample_photos()
    source = classic.prepare_source(analyser.source_face(tom))
    base_faces = q.reference_faces(analyser, group)
    still, pan, wander = q.still_with_drift(group), q.pan(group), q.wander(group)
    rows = []
    for detect_every in (1, 2, 3):
        analyser.detect_every = detect_every
        for smoothing in (0.0, 1.0):
            tracked_still, cost = timed_track(analyser, still, smoothing)
            errors = q.keypoint_errors(still, base_faces, tracked_still)
            lag = q.lag_px(q.keypoint_errors(pan, base_faces, q.track_clip(analyser, pan, smoothing)), np.array([1.0, 0.0]))
            detected = [analyser.detector.detect([frame])[0] for frame in wander.frames]
            dropped, chances = q.dropouts(wander, base_faces, detected, q.track_clip(analyser, wander, smoothing))
            flicker = q.face_flicker(swap_clip(analyser, still, tracked_still, source), still, base_faces)
            rows.append({
                "detect_every": detect_every, "smoothing": smoothing, "jitter_px": q.jitter_px(errors),
                "f2f_px": q.frame_to_frame_px(errors), "flicker": flicker, "lag_px": lag,
                "dropouts": dropped, "dropout_chances": chances, "ms_per_frame": cost,
            })
            r = rows[-1]
            print(f"detect every {detect_every}, smoothing {smoothing:.0f}: jitter {r['jitter_px']:.3f} f2f {r['f2f_px']:.3f} "
                  f"flicker {r['flicker']:.2f} lag {r['lag_px']:.2f} drops {dropped}/{chances} {cost:.2f} ms/frame",
                  flush=True)
    analyser.detect_every = 1
    cost = tracking_cost_ms(analyser, still)
    identity = identity_and_pose(analyser, group, tom, source)
    header = f"{'detect':>6} {'smooth':>6} {'jitter':>7} {'f2f':>6} {'flicker':>7} {'lag':>5} {'drops':>7} {'ms/frame':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['detect_every']:>6} {r['smoothing']:>6.0f} {r['jitter_px']:>7.3f} {r['f2f_px']:>6.3f} {r['flicker']:>7.2f} "
              f"{r['lag_px']:>5.2f} {r['dropouts']:>3}/{r['dropout_chances']:<3} {r['ms_per_frame']:>8.2f}")
    print(f"\ntracking + smoothing add {cost:.2f} ms per frame (six faces, one client)")
    print(f"identity (classic swap, Tom Hanks onto the six faces of t1.jpg): {identity['closer_to_source']}/{identity['faces']} "
          f"faces closer to the source than to their original (cosine {identity['to_source_mean']:.2f} vs "
          f"{identity['to_target_mean']:.2f}); pose kept within {identity['pose_error_pct_max']:.1f}% of the eye distance")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "tracking_cost_ms": cost, "identity": identity}, indent=2))


if __name__ == "__main__":
    main()
