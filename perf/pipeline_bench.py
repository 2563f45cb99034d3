"""Per-stage cost of the face pipeline, per frame, at batch sizes 1, 4 and 8 (CPU here).

Stages: decode (TurboJPEG), detect (SCRFD, one call per batch), landmarks (2d106det, one
call for all faces), swap+paste (classic: warp, colour, blend per face ROI; or inswapper:
one call for all faces + ROI paste-back), enhance (with `--enhancer`), encode. Frames: a
one-face portrait (scikit-image's astronaut) and insightface's six-face group photo, both
640x480.

    .venv/bin/python perf/pipeline_bench.py [--repeats 20] [--swapper classic|inswapper|FAMILY_FILE]
        [--pixel-boost 1..4] [--enhancer ENHANCER] [--json out.json]

`--swapper inswapper` (or any other family's file: hyperswap_1a_256, simswap_256, ...) runs
the batched path on a synthetic graph with that model's exact signature and a trivial body
(no real weights here): its timings show the host work around the model (crops,
normalisation, output decoding, paste-back), not the model's real cost. `--pixel-boost T`
swaps every face at that boost (models/pixel_boost.py): a crop T times the model's size, split
into T*T sub-images, merged and pasted back; the model's own cost, T*T faces' worth per face
on a real one, is not in these figures. `--enhancer NAME` (gfpgan_1.4, gpen_bfr_512,
codeformer, ...) does the same for a face enhancer after the swap, its faces blended at the
default 80%, and also gives its host milliseconds per face (`enh/face`: the enhance stage less
the synthetic model's calls): its crop at the model's size, normalisation, decoding and
paste-back (a 2048 px model's crop has 16 times a 512 px one's pixels).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import classic  # noqa: E402
from models.enhancer import ENHANCERS, EnhanceJob, Enhancer  # noqa: E402
from models.hub import ModelHub, ModelSettings  # noqa: E402
from models.processors import NeuralSwapper  # noqa: E402
from models.swap_models import FAMILY_FILES  # noqa: E402
from perf.synthetic_models import enhancer_file_like, family_like, inswapper_like  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.jpeg import JpegCodec  # noqa: E402

STAGES = ("decode", "detect", "landmarks", "swap", "enhance", "encode")


def sample_frames() -> dict[str, np.ndarray]:
    from skimage import data

    import insightface

    group = cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"))
    portrait = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return {
        "one face": cv2.resize(portrait, (640, 480), interpolation=cv2.INTER_AREA),
        "six faces": cv2.resize(group, (640, 480), interpolation=cv2.INTER_AREA),
    }


@dataclass
class StageTimes:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - start
        return now


def run_batch(hub: ModelHub, codec: JpegCodec, jpegs: list[bytes], swap, enhance, times: StageTimes) -> None:
    start = time.perf_counter()
    frames = [codec.decode(j) for j in jpegs]
    start = times.add("decode", start)
    faces = hub.analyser.detector.detect(frames)
    start = times.add("detect", start)
    hub.analyser.landmarks.annotate(frames, faces)
    start = times.add("landmarks", start)
    swap(frames, faces)
    start = times.add("swap", start)
    if enhance is not None:
        enhance(frames, faces)
        start = times.add("enhance", start)
    for frame in frames:
        codec.encode(frame)
    times.add("encode", start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="batches timed per configuration")
    parser.add_argument("--swapper", choices=("classic", "inswapper", *FAMILY_FILES), default="classic",
                        help="classic, or a neural swapper on a graph with its family's signature (host cost only)")
    parser.add_argument("--pixel-boost", type=int, choices=(1, 2, 3, 4), default=1,
                        help="neural swappers: each face on a crop this many times the model's size")
    parser.add_argument("--enhancer", choices=tuple(ENHANCERS),
                        help="a face enhancer after the swap, on a graph with its signature (host cost only)")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.swapper == "classic" and args.pixel_boost != 1:
        parser.error("--pixel-boost is for the neural swappers")

    hub = ModelHub(ModelSettings(threads=args.threads))
    defaults = ServerConfig()
    codec = JpegCodec(quality=defaults.jpeg_quality, max_pixels=defaults.max_image_pixels)
    tom = cv2.imread(str(Path(__import__("insightface").__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"))
    if args.swapper == "classic":
        source = classic.prepare_source(hub.analyser.source_face(tom))
        options = {"color_correction": True, "opacity": 1.0, "mouth_mask": 0}

        def swap(frames, faces):
            for frame, frame_faces in zip(frames, faces):
                for face in frame_faces:
                    classic.swap_face(frame, face, source, options)
    else:
        directory = Path(tempfile.mkdtemp())
        if args.swapper == "inswapper":
            neural = NeuralSwapper(hub, model_path=inswapper_like(directory / "inswapper_128.onnx"))
        else:
            neural = NeuralSwapper(ModelHub(ModelSettings(threads=args.threads, models_dir=directory)), args.swapper,
                                   model_path=family_like(directory, args.swapper), name=args.swapper)
        model = neural.models[neural.name]
        identity = neural.prepare_source(tom).identities[neural.name]
        from models.face import SwapJob
        from models.paste_back import paste_region
        from models.blend import blend_into

        def swap(frames, faces):
            jobs = [SwapJob(i, face, identity, args.pixel_boost) for i, frame_faces in enumerate(faces)
                    for face in frame_faces]
            fakes, matrices = model.generate(frames, jobs)
            for job, fake, matrix in zip(jobs, fakes, matrices):
                roi, warped, alpha = paste_region(frames[job.frame_index].shape, matrix, fake)
                blend_into(frames[job.frame_index], roi, warped, alpha)

    enhance, enhancer_device = None, None
    if args.enhancer:
        directory = Path(tempfile.mkdtemp())
        enhancer_hub = ModelHub(ModelSettings(threads=args.threads, models_dir=directory))
        enhancer_file_like(directory, args.enhancer)
        enhancer = Enhancer(args.enhancer, enhancer_hub.session(args.enhancer), hub.host)
        enhancer_device = enhancer_hub.device  # its busy time is the synthetic model's, not host work

        def enhance(frames, faces):
            enhancer.enhance([EnhanceJob(frame, face, blend=0.8)
                              for frame, frame_faces in zip(frames, faces) for face in frame_faces])

    stages = [s for s in STAGES if s != "enhance" or enhance is not None]
    results = []
    header = (f"{'frame':>10} {'batch':>5} " + " ".join(f"{s:>9}" for s in stages) + f" {'total':>8} {'fps':>7}"
              + (f" {'enh/face':>8}" if enhance else ""))
    print(f"swapper: {args.swapper}, pixel boost {args.pixel_boost}x; enhancer: {args.enhancer or 'none'}; "
          f"ms per frame by stage\n{header}\n"
          + "-" * len(header))
    for label, image in sample_frames().items():
        jpeg = codec.encode(image)
        faces_per_frame = len(hub.analyser.detector.detect([codec.decode(jpeg)])[0])
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            jpegs = [jpeg] * batch
            run_batch(hub, codec, jpegs, swap, enhance, StageTimes())  # warm-up
            times = StageTimes()
            model_s = enhancer_device.busy_s_total if enhancer_device else 0.0
            for _ in range(args.repeats):
                run_batch(hub, codec, jpegs, swap, enhance, times)
            model_s = (enhancer_device.busy_s_total if enhancer_device else 0.0) - model_s
            per_frame = {s: times.seconds[s] / (args.repeats * batch) * 1000 for s in stages}
            total = sum(per_frame.values())
            row = {"frame": label, "batch": batch, "ms_per_frame": per_frame, "total_ms": total}
            line = f"{label:>10} {batch:>5} " + " ".join(f"{per_frame[s]:>9.2f}" for s in stages) + f" {total:>8.2f} {1000 / total:>7.1f}"
            if enhance is not None:
                host_s = times.seconds["enhance"] - model_s
                row["enhance_host_ms_per_face"] = host_s / (args.repeats * batch * max(faces_per_frame, 1)) * 1000
                line += f" {row['enhance_host_ms_per_face']:>8.2f}"
            print(line)
            results.append(row)
    if args.json:
        args.json.write_text(json.dumps({"swapper": args.swapper, "pixel_boost": args.pixel_boost,
                                         "enhancer": args.enhancer, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
