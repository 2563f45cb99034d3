"""Per-stage cost of the face pipeline, per frame, at batch sizes 1, 4 and 8 (CPU here).

Stages: decode (TurboJPEG), detect (SCRFD, one call per batch), landmarks (2d106det, one
call for all faces), swap+paste (classic: warp, colour, blend per face ROI; or inswapper:
one call for all faces + ROI paste-back), enhance (with `--enhancer`), encode. Frames: a
one-face portrait (scikit-image's astronaut) and insightface's six-face group photo, both
640x480.

    .venv/bin/python perf/pipeline_bench.py [--repeats 20] [--swapper classic|inswapper|FAMILY_FILE]
        [--pixel-boost 1..4] [--masks box,occlusion,region] [--enhancer ENHANCER] [--json out.json]

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


`--masks` (neural swappers; default `box`) pastes through those masks (models/masks.py), the
occluder and the face parser as synthetic graphs with xseg's and bisenet's signatures, and
prints each mask's host cost per face: the CPU time of its host stages (the target crops at
256 px and their decoding for occlusion; the swapped crops at 512 px and the decoding of 19
scores a pixel for region; `mask_combine`, their minimum), not the mask models' own time.
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
from models.blend import blend_into  # noqa: E402
from models.face import SwapJob  # noqa: E402
from models.hub import ModelHub, ModelSettings  # noqa: E402
from models.masks import MASK_TYPES, MaskJob  # noqa: E402
from models.paste_back import paste_region  # noqa: E402
from models.processors import NeuralSwapper  # noqa: E402
from models.swap_models import FAMILY_FILES  # noqa: E402
from models.work import WorkAccount, working_on  # noqa: E402
from perf.synthetic_models import bisenet_like, enhancer_file_like, family_like, inswapper_like, xseg_like  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.jpeg import JpegCodec  # noqa: E402

STAGES = ("decode", "detect", "landmarks", "swap", "enhance", "encode")
MASK_STAGES = tuple(f"mask_{kind}" for kind in MASK_TYPES) + ("mask_combine",)


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
    parser.add_argument("--masks", default="box",
                        help="neural swappers: the masks to paste through, comma-separated among "
                             f"{', '.join(MASK_TYPES)} (occluder and parser as synthetic graphs); their host cost "
                             "per face")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.swapper == "classic" and args.pixel_boost != 1:
        parser.error("--pixel-boost is for the neural swappers")
    masks = [kind for kind in args.masks.split(",") if kind]
    if any(kind not in MASK_TYPES for kind in masks):
        parser.error(f"--masks: among {', '.join(MASK_TYPES)}")
    if args.swapper == "classic" and args.masks != parser.get_default("masks"):
        parser.error("--masks: the masks are the neural swappers' (--swapper inswapper or a family's file)")

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
        xseg_like(directory / "xseg_1.onnx")
        bisenet_like(directory / "bisenet_resnet_18.onnx")
        neural_hub = ModelHub(ModelSettings(threads=args.threads, models_dir=directory,
                                            face_occluder="xseg_1" if "occlusion" in masks else None,
                                            face_parser="bisenet_resnet_18" if "region" in masks else None))
        if args.swapper == "inswapper":
            neural = NeuralSwapper(neural_hub, model_path=inswapper_like(directory / "inswapper_128.onnx"))
        else:
            neural = NeuralSwapper(neural_hub, args.swapper, model_path=family_like(directory, args.swapper),
                                   name=args.swapper)
        model = neural.models[neural.name]
        identity = neural.prepare_source(tom).identities[neural.name]
        mask_options = {"face_mask_types": masks}

        def swap(frames, faces):
            jobs = [SwapJob(i, face, identity, args.pixel_boost) for i, frame_faces in enumerate(faces)
                    for face in frame_faces]
            fakes, matrices = model.generate(frames, jobs)
            crop_masks = neural.masker.masks([MaskJob(frames[job.frame_index], matrix, fake, mask_options)
                                              for job, fake, matrix in zip(jobs, fakes, matrices)])
            for job, fake, matrix, mask in zip(jobs, fakes, matrices, crop_masks):
                roi, warped, alpha = paste_region(frames[job.frame_index].shape, matrix, fake, mask)
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
    masked = f", masks {'+'.join(masks) or 'none'}" if args.swapper != "classic" else ""
    print(f"swapper: {args.swapper}, pixel boost {args.pixel_boost}x{masked}; enhancer: {args.enhancer or 'none'}; "
          f"ms per frame by stage\n{header}\n" + "-" * len(header))
    mask_rows = []
    for label, image in sample_frames().items():
        jpeg = codec.encode(image)
        faces_per_frame = len(hub.analyser.detector.detect([codec.decode(jpeg)])[0])
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            jpegs = [jpeg] * batch
            run_batch(hub, codec, jpegs, swap, enhance, StageTimes())  # warm-up
            times = StageTimes()
            model_s = enhancer_device.busy_s_total if enhancer_device else 0.0
            account = WorkAccount(priority=time.monotonic())  # the host stages' CPU time (the masks')
            with working_on(account):
                for _ in range(args.repeats):
                    run_batch(hub, codec, jpegs, swap, enhance, times)
            model_s = (enhancer_device.busy_s_total if enhancer_device else 0.0) - model_s
            per_frame = {s: times.seconds[s] / (args.repeats * batch) * 1000 for s in stages}
            total = sum(per_frame.values())
            row = {"frame": label, "batch": batch, "ms_per_frame": per_frame, "total_ms": total}
            line = f"{label:>10} {batch:>5} " + " ".join(f"{per_frame[s]:>9.2f}" for s in stages) + f" {total:>8.2f} {1000 / total:>7.1f}"
            faces = faces_per_frame * batch * args.repeats
            if enhance is not None:
                row["enhance_host_ms_per_face"] = (times.seconds["enhance"] - model_s) / max(faces, 1) * 1000
                line += f" {row['enhance_host_ms_per_face']:>8.2f}"
            print(line)
            if args.swapper != "classic" and faces:
                row["mask_host_ms_per_face"] = {s: 1000 * account.host_cpu_s[s] / faces for s in MASK_STAGES}
                mask_rows.append(row)
            results.append(row)
    if mask_rows:
        header = f"{'frame':>10} {'batch':>5} " + " ".join(f"{s:>14}" for s in MASK_STAGES)
        print(f"\nmask host CPU, ms per face\n{header}\n" + "-" * len(header))
        for row in mask_rows:
            print(f"{row['frame']:>10} {row['batch']:>5} "
                  + " ".join(f"{row['mask_host_ms_per_face'][s]:>14.3f}" for s in MASK_STAGES))
    if args.json:
        args.json.write_text(json.dumps({"swapper": args.swapper, "pixel_boost": args.pixel_boost, "masks": masks,
                                         "enhancer": args.enhancer, "results": results}, indent=2))


if __name__ == "__main__":
    main()
