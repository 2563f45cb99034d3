"""Throughput of one server vs two behind nginx (Debian's, with deploy/nginx/facestream.conf).

    .venv/bin/python perf/balancer_bench.py --clients 8 --duration 10 -- --frame-processor classic

Starts two servers with the arguments after `--` (plus a default source face, so every
frame is swapped), puts nginx in front of one of them, then of both, and drives the same
binary clients through it; prints frames/s for each. On this 2-core machine expect little
gain: the point of the setup is correctness (tests/deploy/test_load_balancer.py).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from perf import nginx  # noqa: E402
from perf.drive import drive_client  # noqa: E402
from perf.frames import source_face, still_jpeg  # noqa: E402
from perf.spawn import free_port, spawned_server  # noqa: E402


async def frames_per_second(url: str, jpeg: bytes, clients: int, seconds: float) -> float:
    start = time.perf_counter()
    answered = await asyncio.gather(*(drive_client(url, jpeg, True, start + seconds, []) for _ in range(clients)))
    return sum(answered) / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("server_args", nargs="*", help="after --: arguments for python -m server")
    args = parser.parse_args()
    jpeg = still_jpeg("group")
    face = tempfile.NamedTemporaryFile(suffix=".jpg")
    face.write(source_face(0)[1])
    face.flush()
    server_args = [*(args.server_args or ["--frame-processor", "classic"]), "-s", face.name, "--max-client-fps", "1000"]
    async with spawned_server(server_args) as first, spawned_server(server_args) as second:
        for upstreams in ([first.port], [first.port, second.port]):
            workdir, port = Path(tempfile.mkdtemp()), free_port()
            proxy = nginx.start(workdir, nginx.shipped_site(port, upstreams))
            try:
                await asyncio.sleep(1.0)
                url = f"ws://127.0.0.1:{port}/"
                await frames_per_second(url, jpeg, args.clients, args.warmup)
                fps = await frames_per_second(url, jpeg, args.clients, args.duration)
                print(f"{len(upstreams)} server(s) behind nginx, {args.clients} binary clients: {fps:.1f} frames/s",
                      flush=True)
            finally:
                proxy.terminate()
                proxy.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
