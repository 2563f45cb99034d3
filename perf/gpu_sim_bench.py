"""The scheduler and the host pipeline as they would run beside a GPU, on the simulated accelerator.

`--provider simulated` (models/simulated.py) replaces every model call by a sleep of what an
H100-class GPU would take (GIL released, no CPU used), with real detector and landmark
outputs replayed and the swapper's crops echoed, so everything around the models (decode,
crops, tracking, paste-back, blending, encode, scheduling) does its real work here. The
swapper is inswapper_128 (or `--swapper FILE`, any other family's) on a graph with its exact
signature (no weights needed); `--face-occluder xseg_1` (or xseg_2, xseg_3, many) adds the
occlusion mask, which every client then gets (the server's default when it has an occluder),
on a graph with xseg's signature. These are projections, not GPU measurements.

1. Saturation: eight clients offering far more than the device can do (the `t4` table, six
   faces a frame: ~33 ms of device time per frame, so the device, not this machine's two
   cores, is the bottleneck): how busy the host pipeline keeps it (goal: at least 90%).
2. Capacity: clients x 30 fps (paced, window 2, as `python -m client`) on the `h100` table,
   growing until a client no longer gets ~30 fps or p99 passes 100 ms.
3. Host cost: milliseconds of CPU per frame in each host stage, and what they project for a
   16-core GPU server (`cores x 1000 / ms per frame`, if the stages scale across cores).

    .venv/bin/python perf/gpu_sim_bench.py
    .venv/bin/python perf/gpu_sim_bench.py --clients 1,4,8,12 --duration 8 --scene astronaut
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from client.__main__ import run_loop  # noqa: E402
from perf.latency_probe import ProbeConfig, run_probe  # noqa: E402
from perf.probe_results import ProbeResult  # noqa: E402
from models.swap_models import FAMILY_FILES  # noqa: E402
from models.masks import OCCLUDERS  # noqa: E402
from perf.synthetic_models import family_like, inswapper_like, xseg_like  # noqa: E402

SUSTAINED_FPS = 27.0  # of 30 offered: what counts as a client getting its frames
P99_GOAL_MS = 100.0
PROJECTED_CORES = 16


def server_args(models_dir: Path, table: str, swapper: str = "inswapper",
                occluder: str | None = None) -> tuple[str, ...]:
    return ("--provider", "simulated", "--simulated-device", table, "--frame-processor", swapper,
            "--models-dir", str(models_dir), *(("--face-occluder", occluder) if occluder else ()))


def device_busy(result: ProbeResult) -> float:
    """The share of the measured phase the device spent in model calls (from the server's stats)."""
    def device_s(stats: dict[str, Any]) -> float:
        return stats["device_time_avg"] * stats["batched_frames"]

    return (device_s(result.server_after) - device_s(result.server_before)) / result.duration_s


def replay_misses(result: ProbeResult) -> int:
    """Inputs the replayed models had not seen, while measured: each cost real CPU time (0 is clean)."""
    def misses(stats: dict[str, Any]) -> int:
        return sum(device["simulated_replay_misses"] for device in stats["devices"])

    return misses(result.server_after) - misses(result.server_before)


async def measure(args: argparse.Namespace, models_dir: Path) -> None:
    base = ProbeConfig(spawn=True, duration_s=args.duration, warmup_s=args.warmup, scene=args.scene, progress=False)

    saturated = await run_probe(replace(base, server_args=server_args(models_dir, "t4", args.swapper, args.face_occluder), clients=8,
                                        in_flight=1000, pacing=False))
    busy = device_busy(saturated)
    print(f"1. saturation (t4, {args.scene}, 8 open-loop clients x 30 fps): device busy {busy:.0%} "
          f"(goal >= 90%), {saturated.fps:.1f} frames/s, batch {saturated.batch_size_avg:.2f}, "
          f"replay misses while measured: {replay_misses(saturated)}", flush=True)

    print(f"\n2. capacity (h100, {args.swapper}, {args.scene}, paced clients x 30 fps, window 2):")
    print(f"{'clients':>7} {'fps':>7} {'fps/cl':>7} {'p50 ms':>7} {'p99 ms':>7} {'busy':>5} {'batch':>5} {'sustained':>9}")
    sustained, last = 0, None
    for clients in args.clients:
        result = await run_probe(replace(base, server_args=server_args(models_dir, "h100", args.swapper, args.face_occluder), clients=clients))
        latency = result.latency
        ok = result.fps_per_client >= SUSTAINED_FPS and latency.p99_ms <= P99_GOAL_MS
        sustained = clients if ok else sustained
        last = result
        print(f"{clients:>7} {result.fps:>7.1f} {result.fps_per_client:>7.1f} {latency.p50_ms:>7.1f} "
              f"{latency.p99_ms:>7.1f} {device_busy(result):>5.0%} {result.batch_size_avg:>5.2f} "
              f"{'yes' if ok else 'no':>9}  (replay misses {replay_misses(result)})", flush=True)
    print(f"sustained: {sustained} clients x 30 fps with p99 <= {P99_GOAL_MS:.0f} ms on this machine's host")

    assert last is not None
    stages: dict[str, float] = last.server_after["host_cpu_ms_per_frame"]
    total = sum(stages.values())
    print(f"\n3. host CPU per frame ({args.scene}, h100, {args.clients[-1]} clients):")
    for stage, ms in sorted(stages.items(), key=lambda item: -item[1]):
        print(f"{stage:>16} {ms:7.2f} ms")
    print(f"{'total':>16} {total:7.2f} ms -> {PROJECTED_CORES} cores: ~{PROJECTED_CORES * 1000 / total:.0f} frames/s "
          f"of host work (if the stages scale across cores; Python's GIL may not let them)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,2,4,8,12", help="client counts of the capacity sweep")
    parser.add_argument("--swapper", default="inswapper", choices=("inswapper", *FAMILY_FILES),
                        help="the swapper, on a graph with its model's signature (its cost from the simulated table)")
    parser.add_argument("--face-occluder", choices=tuple(OCCLUDERS),
                        help="add the occlusion mask (on a graph with xseg's signature; its cost from the table)")
    parser.add_argument("--scene", default="group", choices=("group", "astronaut", "tom"),
                        help="what the cameras see: group (six faces) or one face")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=6.0,
                        help="seconds before measuring: the replayed models see every frame once")
    args = parser.parse_args(argv)
    args.clients = [int(part) for part in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="facestream-sim-") as directory:
        models_dir = Path(directory)
        if args.swapper == "inswapper":
            inswapper_like(models_dir / "inswapper_128.onnx")
        else:
            family_like(models_dir, args.swapper)
        for occluder in OCCLUDERS.get(args.face_occluder, ()):
            xseg_like(models_dir / f"{occluder}.onnx")
        run_loop(measure(args, models_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
