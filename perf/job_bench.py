"""Video jobs against live clients, side by side: how fast a file goes, and what it costs them.

Real swap, real faces (a clip of t1.jpg in slow motion: six faces, 640x480), the real client
(`python -m client --input clip.mp4 --output out.mp4`), a fresh server for every run:

1. `saturated`: the server's throughput from perf/latency_probe.py on the same scene, with
   clients sending as fast as their windows allow. The job alone should reach at least 0.9x.
2. `job`: one job alone: its frames/s (from the client's summary) and the batch size; and
   `driven job`: the same job protocol from a driver that sends ready JPEGs (the probe's
   frames) with the client's window of 16, so the server, not the client's decoding and
   encoding on this machine's two cores, sets the pace: the job's throughput as the
   server gives it, and how many of its frames share a batch.
3. `live` vs `live+job`: a few paced live clients (`--live-clients` x `--live-fps`) alone,
   then the same with a job running: their p99 should stay within 1.3x, and what the job
   got meanwhile is reported.

    .venv/bin/python perf/job_bench.py                        # the CPU, classic swapper
    .venv/bin/python perf/job_bench.py --simulated h100       # the simulated GPU (projections)

On `--simulated` the swapper is inswapper_128 on a graph with its exact signature and every
model call takes the table's GPU time (models/simulated.py): not a GPU measurement.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aiohttp  # noqa: E402

from client.__main__ import run_loop  # noqa: E402
from client.config import ClientConfig  # noqa: E402
from client.exchange import ask  # noqa: E402
from client.images import decode_jpeg  # noqa: E402
from client.transport import decode_message, open_websocket, send_message  # noqa: E402
from client.video_job import JOB_WINDOW  # noqa: E402
from protocol import JOB, Error, Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation  # noqa: E402
from perf.frames import LOOP_FRAMES, moving_sequence, source_face, write_clip  # noqa: E402
from perf.gpu_sim_bench import server_args as simulated_server_args  # noqa: E402
from perf.latency_probe import ProbeConfig, run_probe  # noqa: E402
from perf.spawn import ROOT, cpu_seconds, spawned_server  # noqa: E402
from perf.synthetic_models import inswapper_like  # noqa: E402

JOB_SUMMARY = re.compile(r"done: (\d+) frames in ([0-9.]+) s|stopped early.*?: (\d+) frames in ([0-9.]+) s")


def clip(path: Path, frames: int) -> Path:
    """`frames` frames of the group scene in slow motion at 30 fps (the probe's own motion),
    losslessly: each loop decodes to the same pictures, as the probe sends the same JPEGs,
    so the simulated models replay their outputs for both alike (a miss costs real CPU)."""
    loop = [decode_jpeg(jpeg) for jpeg in moving_sequence("group", 640, 480, 95)]
    return write_clip(path, (loop[index % LOOP_FRAMES] for index in range(frames)),
                      [index / 30 for index in range(frames)], crf=0)


async def start_job(server_url: str, face: Path, clip_path: Path, out: Path) -> asyncio.subprocess.Process:
    # Niced: on a small machine the client's decoding and encoding would take the server's cores,
    # which a client on its own machine does not.
    return await asyncio.create_subprocess_exec(
        "nice", "-n", "19", sys.executable, "-m", "client", "-s", str(face), "--input", str(clip_path), "--output", str(out),
        "--server-url", server_url, "--log-level", "WARNING", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


async def job_result(process: asyncio.subprocess.Process) -> tuple[int, float]:
    """(frames written, their frames/s) from the job's summary line."""
    output = (await process.communicate())[0].decode(errors="replace")
    match = JOB_SUMMARY.search(output)
    if match is None:
        raise RuntimeError(f"the job printed no summary: {output}")
    frames, seconds = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return int(frames), int(frames) / float(seconds)


async def stats(http: aiohttp.ClientSession, server) -> dict:
    async with http.get(f"{server.http_url}/stats") as response:
        return await response.json()


async def drive_job(server, face: bytes, frames: tuple[bytes, ...], count: int) -> tuple[float, float]:
    """A job of `count` ready JPEGs over the job protocol, `JOB_WINDOW` unanswered at most, as
    fast as the server answers: (frames/s, frames per batch while it ran)."""
    config = ClientConfig(server_url=server.ws_url, binary=True)
    async with aiohttp.ClientSession() as http:
        ws = await open_websocket(http, config, protocols=(JOB,))
        try:
            await ask(ws, SourceFace(image=face), SourceFaceConfirmation, 120, binary=True)
            before = await stats(http, server)
            started, sent, answered = time.perf_counter(), 0, 0
            while answered < count:
                while sent < count and sent - answered < JOB_WINDOW:
                    frame = Frame(jpeg=frames[sent % len(frames)], timestamp=sent / 30, seq=sent)
                    await send_message(ws, frame, binary=True)
                    sent += 1
                message = decode_message(await ws.receive(timeout=120))
                if isinstance(message, ProcessedFrame):
                    assert message.seq == answered, f"answers out of order: {message.seq} after {answered - 1}"
                    answered += 1
                elif isinstance(message, Error) and message.seq is not None:
                    answered += 1
            elapsed = time.perf_counter() - started
            after = await stats(http, server)
        finally:
            await ws.close()
    batches = after["batches"] - before["batches"]
    return count / elapsed, (after["batched_frames"] - before["batched_frames"]) / max(batches, 1)


async def measure(args: argparse.Namespace, server_args: tuple[str, ...], workdir: Path) -> None:
    face = workdir / "face.jpg"
    face.write_bytes(source_face(0)[1])
    short, long = clip(workdir / "short.mp4", args.frames), clip(workdir / "long.mp4", 3000)
    base = ProbeConfig(spawn=True, server_args=server_args, duration_s=args.duration, warmup_s=args.warmup,
                       scene="group", progress=False)
    rows: dict[str, list[float]] = {
        "saturated fps": [], "job fps": [], "saturated server CPU ms/frame": [], "job server CPU ms/frame": [],
        "job client CPU ms/frame": [], "live p99 ms": [], "live+job p99 ms": [], "live fps": [],
        "live+job live fps": [], "job fps beside live": [], "driven job fps": [], "driven job batch": [],
        "live+driven job p99 ms": [], "driven job fps beside live": []}
    for _ in range(args.repeat):
        saturated = await run_probe(replace(base, clients=4, fps=0.0, pacing=False))
        rows["saturated fps"].append(saturated.fps)
        processed = saturated.server_after["frames_processed"] - saturated.server_before["frames_processed"]
        rows["saturated server CPU ms/frame"].append(1000 * (saturated.server_cpu_s or 0.0) / max(processed, 1))
        async with spawned_server(server_args) as server:
            server_cpu = cpu_seconds(server.process.pid)
            job = await start_job(server.ws_url, face, short, workdir / "out.mp4")
            client_cpu = 0.0
            while job.returncode is None:  # its CPU, read while it runs (a reaped process has no /proc entry)
                try:
                    client_cpu = cpu_seconds(job.pid)
                except (FileNotFoundError, ProcessLookupError):
                    break
                await asyncio.sleep(0.2)
            frames, fps = await job_result(job)
            rows["job fps"].append(fps)
            rows["job server CPU ms/frame"].append(1000 * (cpu_seconds(server.process.pid) - server_cpu) / frames)
            rows["job client CPU ms/frame"].append(1000 * client_cpu / frames)
        async with spawned_server(server_args) as server:
            fps, batch = await drive_job(server, face.read_bytes(), moving_sequence("group", 640, 480, 95), args.frames)
            rows["driven job fps"].append(fps)
            rows["driven job batch"].append(batch)
        live = replace(base, clients=args.live_clients, fps=args.live_fps)
        alone = await run_probe(live)
        rows["live p99 ms"].append(alone.latency.p99_ms)
        rows["live fps"].append(alone.fps)
        async with spawned_server(server_args) as server:
            job = await start_job(server.ws_url, face, long, workdir / "beside.mp4")
            await asyncio.sleep(2.0)  # the job is running at full speed
            beside = await run_probe(replace(live, spawn=False, server_url=server.ws_url))
            job.send_signal(signal.SIGINT)
            rows["job fps beside live"].append((await job_result(job))[1])
        rows["live+job p99 ms"].append(beside.latency.p99_ms)
        rows["live+job live fps"].append(beside.fps)
        async with spawned_server(server_args) as server:  # the driven job beside them: the server's share alone
            driven = asyncio.ensure_future(drive_job(server, face.read_bytes(), moving_sequence("group", 640, 480, 95),
                                                     100_000))
            await asyncio.sleep(2.0)
            beside = await run_probe(replace(live, spawn=False, server_url=server.ws_url))
            driven.cancel()
            await asyncio.gather(driven, return_exceptions=True)
        rows["live+driven job p99 ms"].append(beside.latency.p99_ms)
        processed = beside.server_after["frames_processed"] - beside.server_before["frames_processed"]
        rows["driven job fps beside live"].append(processed / beside.duration_s - beside.fps)
    medians = {name: statistics.median(values) for name, values in rows.items()}
    for name, value in medians.items():
        print(f"{name:24s} {value:8.1f}   (runs: {', '.join(f'{v:.1f}' for v in rows[name])})")
    print(f"job / saturated: {medians['job fps'] / medians['saturated fps']:.2f}x (goal: at least 0.9x; the job's "
          f"client shares this machine's cores, the probe's clients send ready JPEGs)")
    print(f"driven job / saturated: {medians['driven job fps'] / medians['saturated fps']:.2f}x, "
          f"{medians['driven job batch']:.1f} frames a batch (ready JPEGs: the server's pace, not the client's)")
    print(f"server CPU per frame, job / saturated: "
          f"{medians['job server CPU ms/frame'] / medians['saturated server CPU ms/frame']:.2f}x")
    print(f"live p99 with a job / without: {medians['live+job p99 ms'] / medians['live p99 ms']:.2f}x (goal: at most 1.3x)")
    print(f"live p99 with a driven job / without: {medians['live+driven job p99 ms'] / medians['live p99 ms']:.2f}x "
          "(the job's client off this machine's cores)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulated", choices=("h100", "h100-fp32", "t4"),
                        help="run on the simulated accelerator with this table (projections, not a GPU)")
    parser.add_argument("--frames", type=int, default=300, help="frames of the job measured alone")
    parser.add_argument("--live-clients", type=int, default=2)
    parser.add_argument("--live-fps", type=float, default=5.0, help="frames/s each live client offers")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds each probe measures")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of everything; medians are reported")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="facestream-job-bench-") as directory:
        workdir = Path(directory)
        server_args: tuple[str, ...] = ("--frame-processor", "classic")
        if args.simulated:
            inswapper_like(workdir / "inswapper_128.onnx")
            server_args = simulated_server_args(workdir, args.simulated)
        run_loop(measure(args, server_args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
