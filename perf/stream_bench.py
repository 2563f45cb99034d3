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
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import cv2
import numpy as np
from turbojpeg import TJFLAG_FASTDCT, TJFLAG_FASTUPSAMPLE, TJSAMP_420, TurboJPEG

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from protocol import Frame, decode_binary, encode_binary, encode_json  # noqa: E402

WINDOW = 2


def sample_frame_jpeg(kind: str, width: int = 640, height: int = 480, quality: int = 85) -> bytes:
    """`group`: insightface's t1.jpg (six faces); `portrait`: scikit-image's astronaut (one face)."""
    if kind == "portrait":
        from skimage import data

        image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    else:
        spec = importlib.util.find_spec("insightface")
        assert spec and spec.submodule_search_locations
        image = cv2.imread(str(Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / "t1.jpg"))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def codec_floor_ms(jpeg: bytes, repeats: int = 200) -> float:
    """Single-thread decode+encode time of one frame, the way the server does it."""
    turbo = TurboJPEG()
    start = time.perf_counter()
    for _ in range(repeats):
        image = turbo.decode(jpeg, flags=TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE)
        turbo.encode(image, quality=85, jpeg_subsample=TJSAMP_420)
    return (time.perf_counter() - start) / repeats * 1000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def drive_client(url: str, jpeg: bytes, binary: bool, stop_at: float, rtts: list[float]) -> int:
    """Send as fast as a window of WINDOW unanswered frames allows; return frames answered."""
    answered = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0, compress=0) as ws:
        sent_at: dict[int, float] = {}
        next_seq, last_answer = 0, -1

        async def send_one() -> None:
            nonlocal next_seq
            frame = Frame(jpeg=jpeg, timestamp=time.time(), seq=next_seq)
            sent_at[next_seq] = time.perf_counter()
            if binary:
                await ws.send_bytes(encode_binary(frame))
            else:
                await ws.send_str(encode_json(frame).decode())
            next_seq += 1

        for _ in range(WINDOW):
            await send_one()
        while time.perf_counter() < stop_at:
            message = await ws.receive(timeout=30)
            if message.type == aiohttp.WSMsgType.BINARY:
                seq = decode_binary(message.data).seq
            elif message.type == aiohttp.WSMsgType.TEXT:
                seq = json.loads(message.data).get("seq")
            else:
                raise RuntimeError(f"connection ended: {message.type}")
            rtts.append(time.perf_counter() - sent_at.pop(seq))
            for old in [s for s in sent_at if s < seq]:  # superseded: they will never be answered
                del sent_at[old]
            last_answer, answered = seq, answered + 1
            while next_seq - 1 - last_answer < WINDOW:
                await send_one()
    return answered


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(base: str, process: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("server exited during start-up")
            try:
                async with http.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise TimeoutError("server did not start")


async def run_config(mode: str, clients: int, duration: float, warmup: float, jpeg: bytes, server_args: list[str]) -> Result:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING", *server_args],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        await wait_healthy(base, process)
        binary = mode == "binary"
        # Warm-up run, then the measured run on the same server (fresh percentiles window by size).
        await asyncio.gather(*(drive_client(base, jpeg, binary, time.perf_counter() + warmup, []) for _ in range(clients)))
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/stats") as response:
                before = await response.json()
            cpu_before = cpu_seconds(process.pid)
            rtts: list[float] = []
            start = time.perf_counter()
            answered = await asyncio.gather(
                *(drive_client(base, jpeg, binary, start + duration, rtts) for _ in range(clients))
            )
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(process.pid) - cpu_before
            async with http.get(base + "/stats") as response:
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
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


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
    jpeg = sample_frame_jpeg(args.frame)
    floor = codec_floor_ms(jpeg)
    print(f"frame: 640x480 JPEG q85, {len(jpeg) / 1024:.1f} KiB; {os.cpu_count()} cores", flush=True)
    server_args = args.server_args or ["--frame-processor", "passthrough"]
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
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
