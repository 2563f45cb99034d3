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

Identity and pose (Tom Hanks and scikit-image's astronaut onto the six faces of t1.jpg):
  closer      faces whose swapped face is closer to the source than to the face it replaced
              (ArcFace cosine by the embedded MobileFaceNet, whatever the swapper runs with)
  →src →orig  mean cosine of the swapped faces to the source and to the original faces
  pose max    how far the swapped faces' 5 keypoints moved, mean and worst, % of eye distance

    .venv/bin/python perf/quality_bench.py --identity-only --swapper inswapper --models-dir DIR
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
from models.choice import build_swapper  # noqa: E402
from models.frame import FrameContext  # noqa: E402
from models.hub import ModelHub, ModelSettings  # noqa: E402
from models.recognizer import ArcFace  # noqa: E402
from models.tracking import FaceTracker  # noqa: E402
from perf import quality as q  # noqa: E402


WARP_SWEEP = (0.0, classic.WARP_DETAIL, 0.6, 1.0)


def sample_photos() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """t1.jpg at a camera's size, and two source photos: insightface's Tom Hanks (greyscale,
    a tight crop) and scikit-image's astronaut (colour)."""
    import insightface
    from skimage import data

    images = Path(insightface.__file__).parent / "data" / "images"
    group = cv2.resize(cv2.imread(str(images / "t1.jpg")), (640, 480), interpolation=cv2.INTER_AREA)
    return group, {"Tom Hanks": cv2.imread(str(images / "Tom_Hanks_54745.png")),
                   "astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)}


def paint(photo: np.ndarray, faces: list, sources: list[classic.WarpSource],
          detail: float = classic.WARP_DETAIL) -> np.ndarray:
    """A copy of `photo` with each face painted with its own source by the classic warp."""
    output = photo.copy()
    for face, source in zip(faces, sources):
        classic.swap_face(output, face, source, {"color_correction": True}, detail=detail)
    return output


def swap_clip(clip: q.Clip, tracked: list, source: classic.WarpSource) -> list[np.ndarray]:
    return [paint(frame, faces, [source] * len(faces)) for frame, faces in zip(clip.frames, tracked)]


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


def swap_every_face(analyser, photo: np.ndarray, sources: list[classic.WarpSource], detail: float) -> np.ndarray:
    """Each face of `photo` (detector order) painted with its own source by the classic warp."""
    return paint(photo, analyser.analyse([photo], [True], True)[0], sources, detail)


def warp_sweep(analyser, judge: ArcFace, group: np.ndarray, sources: dict[str, list[np.ndarray]]) -> list[dict]:
    """Identity and pose of the classic warp as it follows more of the target's shape, per source
    (a source photo for each face of `group`)."""
    rows = []
    for name, photos in sources.items():
        prepared = [analyser.source_face(photo) for photo in photos]
        classic_sources = [classic.prepare_source(photo) for photo in prepared]
        embeddings = [q.source_embedding(judge, photo) for photo in prepared]
        for detail in WARP_SWEEP:
            swapped = swap_every_face(analyser, group, classic_sources, detail)
            rows.append({"source": name, "detail": detail,
                         **q.identity_summary(q.identity_and_pose(analyser, judge, group, swapped, embeddings))})
    return rows


def swapper_identity(hub: ModelHub, judge: ArcFace, name: str, group: np.ndarray,
                     sources: dict[str, np.ndarray]) -> list[dict]:
    """Identity and pose through the swapper the server runs (its processor, as a client's frame)."""
    swapper = build_swapper(name, hub)
    faces = len(q.reference_faces(hub.analyser, group))
    rows = []
    for source_name, image in sources.items():
        client = FrameContext(options={"many_faces": True}, sources={swapper.name: swapper.prepare_source(image)})
        swapped = swapper.process([group.copy()], [client])[0]
        embedding = q.source_embedding(judge, hub.analyser.source_face(image))
        rows.append({"swapper": swapper.name, "source": source_name,
                     **q.identity_summary(q.identity_and_pose(hub.analyser, judge, group, swapped, [embedding] * faces))})
    return rows


def identity_line(r: dict) -> str:
    return (f"{r['closer_to_source']}/{r['faces']:<3} {r['to_source_mean']:>6.2f} {r['to_target_mean']:>6.2f} "
            f"{r['pose_error_pct_mean']:>6.1f}% {r['pose_error_pct_max']:>6.1f}%")


def motion_rows(analyser, group: np.ndarray, source: classic.WarpSource) -> tuple[list[dict], float]:
    """Jitter, flicker, lag and dropouts per setting; and the added cost of tracking."""
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
            flicker = q.face_flicker(swap_clip(still, tracked_still, source), still, base_faces)
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
    return rows, tracking_cost_ms(analyser, still)


def print_motion(rows: list[dict], cost: float) -> None:
    header = f"{'detect':>6} {'smooth':>6} {'jitter':>7} {'f2f':>6} {'flicker':>7} {'lag':>5} {'drops':>7} {'ms/frame':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['detect_every']:>6} {r['smoothing']:>6.0f} {r['jitter_px']:>7.3f} {r['f2f_px']:>6.3f} {r['flicker']:>7.2f} "
              f"{r['lag_px']:>5.2f} {r['dropouts']:>3}/{r['dropout_chances']:<3} {r['ms_per_frame']:>8.2f}")
    print(f"\ntracking + smoothing add {cost:.2f} ms per frame (six faces, one client)")


def print_identity(served: list[dict], sweep: list[dict]) -> None:
    columns = f"{'closer':<7} {'→src':>6} {'→orig':>6} {'pose':>7} {'max':>7}"
    print(f"\nidentity and pose on t1.jpg (640x480), through the server's swapper\n{'swapper':<10} {'source':<10} {columns}")
    for r in served:
        print(f"{r['swapper']:<10} {r['source']:<10} {identity_line(r)}")
    print(f"\nthe classic warp following more of the target's shape (default {classic.WARP_DETAIL}); controls: each face "
          f"swapped with its neighbour in the photo, and with itself\n{'source':<10} {'detail':>6} {columns}")
    for r in sweep:
        print(f"{r['source']:<10} {r['detail']:>6.1f} {identity_line(r)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--swapper", default="auto", choices=("auto", "classic", "inswapper"),
                        help="the swapper measured for identity (auto: inswapper when its weights are found)")
    parser.add_argument("--models-dir", type=Path, help="where larger models (inswapper_128, w600k_r50) are")
    parser.add_argument("--identity-only", action="store_true", help="skip the clips (jitter, lag, dropouts)")
    args = parser.parse_args()
    hub = ModelHub(ModelSettings(threads=1, models_dir=args.models_dir))
    analyser = hub.analyser
    group, sources = sample_photos()
    rows, cost = [], None
    if not args.identity_only:
        rows, cost = motion_rows(analyser, group, classic.prepare_source(analyser.source_face(sources["Tom Hanks"])))
    judge = q.identity_judge(hub)
    served = swapper_identity(hub, judge, args.swapper, group, sources)
    people = q.reference_faces(analyser, group)
    sweep = warp_sweep(analyser, judge, group, {
        **{name: [photo] * len(people) for name, photo in sources.items()},
        "neighbour": [q.person_photo(group, people[(i + 1) % len(people)]) for i in range(len(people))],
        "itself": [q.person_photo(group, face) for face in people],
    })
    if rows:
        print_motion(rows, cost)
    print_identity(served, sweep)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "tracking_cost_ms": cost, "identity": served, "warp_sweep": sweep},
                                        indent=2))


if __name__ == "__main__":
    main()
