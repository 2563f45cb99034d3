"""Transport benchmark: passthrough throughput and server time, JSON vs binary, side by side.

Starts a fresh `python -m server --frame-processor passthrough` per configuration on
127.0.0.1, drives N clients as fast as an in-flight window of 2 allows, and prints frames/s,
the server's own time per frame (p50/p99 from its stats), the server's CPU time per frame,
and that CPU time against the JPEG decode+encode floor measured in the same run.

    .venv/bin/python perf/stream_bench.py --clients 1,4,16 --duration 5 --json out.json
    .venv/bin/python perf/stream_bench.py --frame portrait --modes binary -- \
        --frame-processor classic -s .venv/lib/python3.11/site-packages/insightface/data/images/Tom_Hanks_54745.png
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import numpy as np
from turbojpeg import TJFLAG_FASTDCT, TJFLAG_FASTUPSAMPLE, TJSAMP_420, TurboJPEG

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from client.__main__ import run_loop  # noqa: E402
from perf.drive import drive_client  # noqa: E402
from perf.frames import still_jpeg  # noqa: E402
from perf.spawn import cpu_seconds, spawned_server  # noqa: E402

SCENES = {"group": "group", "portrait": "astronaut"}  # --frame: the names this tool has always used


def codec_floor_ms(jpeg: bytes, repeats: int = 200) -> float:
    """Single-thread decode+encode time of one frame, the way the server does it."""
    turbo = TurboJPEG()
    start = time.perf_counter()
    for _ in range(repeats):
        image = turbo.decode(jpeg, flags=TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE)
        turbo.encode(image, quality=85, jpeg_subsample=TJSAMP_420)
    return (time.perf_counter() - start) / repeats * 1000


@dataclass
class Result:
    mode: str
    clients: int
    fps: float
    rtt_p50_ms: float
    rtt_p99_ms: float
    server_p50_ms: float
    server_p99_ms: float
    server_cpu_ms_per_frame: float
    batch_size_avg: float
    superseded: int


async def run_config(mode: str, clients: int, duration: float, warmup: float, jpeg: bytes, server_args: list[str]) -> Result:
    async with spawned_server(server_args) as server:
        binary = mode == "binary"
        # Warm-up run, then the measured run on the same server (fresh percentiles window by size).
        await asyncio.gather(*(drive_client(server.ws_url, jpeg, binary, time.perf_counter() + warmup, [])
                               for _ in range(clients)))
        async with aiohttp.ClientSession() as http:
            async with http.get(server.http_url + "/stats") as response:
                before = await response.json()
            cpu_before = cpu_seconds(server.process.pid)
            rtts: list[float] = []
            start = time.perf_counter()
            answered = await asyncio.gather(
                *(drive_client(server.ws_url, jpeg, binary, start + duration, rtts) for _ in range(clients))
            )
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(server.process.pid) - cpu_before
            async with http.get(server.http_url + "/stats") as response:
                after = await response.json()
    frames = sum(answered)
    processed = after["frames_processed"] - before["frames_processed"]
    batches = after["batches"] - before["batches"]
    return Result(
        mode=mode,
        clients=clients,
        fps=frames / elapsed,
        rtt_p50_ms=float(np.percentile(rtts, 50) * 1000),
        rtt_p99_ms=float(np.percentile(rtts, 99) * 1000),
        server_p50_ms=after["server_time_p50"] * 1000,
        server_p99_ms=after["server_time_p99"] * 1000,
        server_cpu_ms_per_frame=cpu / max(processed, 1) * 1000,
        batch_size_avg=(after["batched_frames"] - before["batched_frames"]) / max(batches, 1),
        superseded=after["frames_superseded"] - before["frames_superseded"],
    )


def print_table(results: list[Result], floor_ms: float) -> None:
    print(f"\nJPEG decode+encode floor (1 thread, this machine): {floor_ms:.2f} ms/frame")
    header = f"{'mode':>7} {'clients':>7} {'fps':>8} {'rtt p50':>8} {'rtt p99':>8} {'srv p50':>8} {'srv p99':>8} {'cpu/fr':>7} {'xfloor':>6} {'batch':>5}"
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(f"{r.mode:>7} {r.clients:>7} {r.fps:>8.1f} {r.rtt_p50_ms:>7.1f}m {r.rtt_p99_ms:>7.1f}m "
              f"{r.server_p50_ms:>7.1f}m {r.server_p99_ms:>7.1f}m {r.server_cpu_ms_per_frame:>6.2f}m "
              f"{r.server_cpu_ms_per_frame / floor_ms:>6.2f} {r.batch_size_avg:>5.2f}")
    by_key = {(r.mode, r.clients): r for r in results}
    for clients in sorted({r.clients for r in results}):
        if ("json", clients) in by_key and ("binary", clients) in by_key:
            ratio = by_key[("binary", clients)].fps / by_key[("json", clients)].fps
            print(f"binary/json throughput at {clients} client(s): {ratio:.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--modes", default="json,binary", help="json, binary or both")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--frame", choices=("group", "portrait"), default="group",
                        help="group: six faces (t1.jpg); portrait: one face (astronaut)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("server_args", nargs="*", help="after --: extra server arguments")
    args = parser.parse_args()
    jpeg = still_jpeg(SCENES[args.frame])
    floor = codec_floor_ms(jpeg)
    print(f"frame: 640x480 JPEG q85, {len(jpeg) / 1024:.1f} KiB; {os.cpu_count()} cores", flush=True)
    server_args = args.server_args or ["--frame-processor", "passthrough", "--max-client-fps", "1000"]
    results = []
    for clients in (int(c) for c in args.clients.split(",")):
        for mode in args.modes.split(","):
            result = await run_config(mode, clients, args.duration, args.warmup, jpeg, server_args)
            print(f"  {mode:>6} x{clients:<3} {result.fps:8.1f} frames/s", flush=True)
            results.append(result)
    print_table(results, floor)
    if args.json:
        args.json.write_text(json.dumps({"floor_ms": floor, "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    run_loop(main())
