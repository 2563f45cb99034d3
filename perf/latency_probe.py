"""Load and latency probe: N real-looking clients against a running or self-started server.

Each client connects, sends its own source face (Tom Hanks and the astronaut in turn) and
waits for the confirmation, then streams a looping, moving sequence of real face frames
(pre-encoded JPEGs) at --fps through the client's own in-flight window. After --warmup
seconds, which count nowhere, every client drains and the probe reads the server's /stats;
then all stream for --duration seconds, drain again, and the probe reads /stats again.

Per client and in total it reports frames sent, answered, superseded and failed (the
server's counters for that very connection), errors, round-trip latency p50/p90/p95/p99/max
(from the echoed timestamps), frames/s and bytes/s, and it checks the books: each client's
counts must equal the server's for its connection, and the server's totals must satisfy
received == processed + superseded + failed. A mismatch is printed loudly and the exit
status is 3.

    .venv/bin/python perf/latency_probe.py --server-url ws://HOST:8765 --clients 4 --duration 10
    .venv/bin/python perf/latency_probe.py --spawn --clients 8 --mode both -- --frame-processor passthrough
    .venv/bin/python perf/latency_probe.py --spawn --sweep clients=1,2,4,8,16 --mode both \\
        --json /tmp/probe.json --plot /tmp/probe.png -- --frame-processor classic

Arguments after `--` go to `python -m server` (with --spawn, which starts a fresh server on
a free 127.0.0.1 port for every run and stops it afterwards).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import aiohttp
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from client.__main__ import run_loop  # noqa: E402
from client.cli import TOKEN_ENV, non_negative, positive  # noqa: E402
from client.config import DEFAULT_SERVER_URL, ClientConfig  # noqa: E402
from client.errors import ClientError  # noqa: E402
from client.transport import ssl_context  # noqa: E402
from perf.drive import SETTLE_S  # noqa: E402
from perf.frames import SCENES  # noqa: E402
from perf.probe_clients import ClientSpec, ProbeError, run_clients, run_clients_in_processes  # noqa: E402
from perf.probe_progress import Progress  # noqa: E402
from perf.probe_report import (  # noqa: E402
    PLOT_MISSING,
    client_table,
    mismatch_report,
    plot,
    plot_available,
    sweep_table,
    write_json,
)
from perf.probe_results import ProbeResult  # noqa: E402
from perf.spawn import ServerStartError, cpu_seconds, spawned_server  # noqa: E402

MODES = ("json", "binary")
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISMATCH = 3


@dataclass(frozen=True)
class ProbeConfig:
    """One run: `clients` clients streaming in one `mode` to `server_url`, or to a spawned server."""

    server_url: str = DEFAULT_SERVER_URL
    spawn: bool = False  # start `python -m server *server_args` on a free port for this run
    server_args: tuple[str, ...] = ()
    token: str | None = None
    ca_file: Path | None = None
    insecure: bool = False
    clients: int = 1
    processes: int = 1  # worker processes the clients are spread over (1: all in this one)
    mode: str = "binary"  # json | binary
    fps: float = 30.0  # per client; 0: as fast as the in-flight window allows
    duration_s: float = 10.0
    warmup_s: float = 2.0
    in_flight: int = 2
    pacing: bool = True  # follow the server's pacing, as the client does
    scene: str = "group"
    width: int = 640
    height: int = 480
    quality: int = 85
    progress: bool = False  # the progress line on stderr

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.clients < 1 or self.processes < 1 or self.in_flight < 1:
            raise ValueError("clients, processes and in-flight must be at least 1")
        if self.duration_s <= 0 or self.warmup_s < 0 or self.fps < 0:
            raise ValueError("duration must be positive; warm-up and fps not negative")

    def client_config(self, server_url: str) -> ClientConfig:
        return ClientConfig(server_url=server_url, token=self.token, ca_file=self.ca_file, insecure=self.insecure,
                            binary=self.mode == "binary", in_flight=self.in_flight, pacing=self.pacing, width=self.width,
                            height=self.height, fps=self.fps, quality=self.quality)


def stats_url(ws_url: str) -> URL:
    """The HTTP /stats next to a WebSocket endpoint (same host, port and path prefix)."""
    url = URL(ws_url)
    return url.with_scheme("https" if url.scheme in ("wss", "https") else "http").join(URL("stats"))


async def server_stats(http: aiohttp.ClientSession, config: ClientConfig, settle: bool = False) -> dict[str, Any]:
    """GET /stats (with the token); with `settle`, until nothing is in flight or SETTLE_S passes."""
    url = stats_url(config.server_url)
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        async with http.get(url, headers=headers, ssl=ssl_context(config)) as response:
            if response.status != 200:
                raise ProbeError(f"GET {url} answered HTTP {response.status}"
                                 + (" (wrong or missing --token)" if response.status == 401 else ""))
            stats = await response.json()
        if not settle or stats.get("frames_in_flight", 0) == 0 or asyncio.get_running_loop().time() >= deadline:
            return stats
        await asyncio.sleep(0.05)


async def run_probe(config: ProbeConfig) -> ProbeResult:
    """One run, start to finish (spawning and stopping the server when `config.spawn`)."""
    if config.spawn:
        async with spawned_server(config.server_args) as server:
            return await _probe(config, server.ws_url, server.process.pid)
    return await _probe(config, config.server_url, None)


async def _probe(config: ProbeConfig, server_url: str, server_pid: int | None) -> ProbeResult:
    client_config = config.client_config(server_url)
    processes = min(config.processes, config.clients)
    specs = [ClientSpec(index=i, config=client_config, fps=config.fps, warmup_s=config.warmup_s,
                        duration_s=config.duration_s, scene=config.scene, width=config.width, height=config.height,
                        quality=config.quality) for i in range(config.clients)]
    progress = Progress(f"{config.mode} x{config.clients}") if config.progress else None
    on_answer = progress.record if progress is not None else None
    snapshots: dict[str, Any] = {}

    async with aiohttp.ClientSession() as http:
        async def rendezvous(step: str) -> None:
            """The probe's part at each step; every client waits, idle, until it returns."""
            if step == "connected" and progress is not None:
                progress.begin("warm-up")
            elif step == "warmed up":
                snapshots["before"] = await server_stats(http, client_config)
                snapshots["cpu_before"] = cpu_seconds(server_pid) if server_pid else None
                if progress is not None:
                    progress.begin("measure")
            elif step == "measured":
                snapshots["cpu_after"] = cpu_seconds(server_pid) if server_pid else None
                snapshots["after"] = await server_stats(http, client_config, settle=True)
                if progress is not None:
                    progress.begin("closing")

        if progress is not None:
            progress.start()
        try:
            if processes > 1:
                per_client = await run_clients_in_processes(specs, processes, rendezvous, on_answer)
            else:
                per_client = await run_clients(specs, rendezvous, on_answer)
        finally:
            if progress is not None:
                await progress.stop()

    cpu = snapshots["cpu_after"] - snapshots["cpu_before"] if server_pid else None
    result = ProbeResult(
        mode=config.mode, clients=config.clients, processes=processes,
        fps_target=config.fps, in_flight=config.in_flight, duration_s=config.duration_s, warmup_s=config.warmup_s,
        scene=config.scene, width=config.width, height=config.height, target=server_url,
        server_args=list(config.server_args) if config.spawn else None, per_client=per_client,
        server_before=snapshots["before"], server_after=snapshots["after"], server_cpu_s=cpu,
    )
    result.check()
    return result


def sweep_points(config: ProbeConfig, sweep_clients: Sequence[int], modes: Sequence[str]) -> list[ProbeConfig]:
    """The runs of a sweep, clients by clients, each mode in turn."""
    return [dataclasses.replace(config, clients=n, mode=mode) for n in sweep_clients for mode in modes]


# ---- command line -----------------------------------------------------------------------

def _parse_sweep(text: str) -> list[int]:
    key, _, values = text.partition("=")
    if key.strip() != "clients" or not values:
        raise argparse.ArgumentTypeError(f"expected clients=1,2,4,... got {text!r}")
    try:
        counts = [int(value) for value in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"client counts must be integers: {values!r}") from None
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("client counts must be at least 1")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latency_probe.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 ok, 1 a run failed (connection, server start), 2 bad usage, 3 accounting mismatch.")
    target = parser.add_argument_group("target")
    target.add_argument("--server-url", default=DEFAULT_SERVER_URL, metavar="URL",
                        help="ws://HOST:PORT or wss://HOST:PORT (default: %(default)s)")
    target.add_argument("--spawn", action="store_true",
                        help="start `python -m server` (with the arguments after --) on a free 127.0.0.1 port per run")
    target.add_argument("--token", help=f"access token for the WebSocket and /stats (default: ${TOKEN_ENV})")
    target.add_argument("--ca-file", type=Path, metavar="PEM", help="trust this certificate for wss://")
    target.add_argument("--insecure", action="store_true", help="do not verify the wss:// certificate")
    load = parser.add_argument_group("load")
    load.add_argument("--clients", type=positive(int), default=1, metavar="N", help="concurrent clients (default: 1)")
    load.add_argument("--processes", type=positive(int), default=1, metavar="P",
                      help="spread the clients over P processes, so the probe is not the bottleneck (default: 1)")
    load.add_argument("--fps", type=non_negative(float), default=30.0,
                      help="frames/s per client; 0: as fast as the in-flight window allows (default: 30)")
    load.add_argument("--duration", type=positive(float), default=10.0, metavar="S",
                      help="measured seconds (default: 10)")
    load.add_argument("--warmup", type=non_negative(float), default=2.0, metavar="S",
                      help="seconds streamed before measuring, excluded from all figures (default: 2)")
    load.add_argument("--mode", choices=("json", "binary", "both"), default="binary",
                      help="frame encoding; both: one run each (default: binary)")
    load.add_argument("--in-flight", type=positive(int), default=2, metavar="K",
                      help="unanswered frames per client, as the client's --in-flight (default: 2)")
    load.add_argument("--no-pacing", dest="pacing", action="store_false",
                      help="do not offer the server's pacing (the client's --no-pacing; original clients never "
                           "use it)")
    load.add_argument("--scene", choices=SCENES, default="group",
                      help="what the camera sees: group (six faces), astronaut or tom (one face) (default: group)")
    load.add_argument("--width", type=positive(int), default=640, metavar="PX")
    load.add_argument("--height", type=positive(int), default=480, metavar="PX")
    load.add_argument("--quality", type=int, choices=range(1, 101), default=85, metavar="1..100", help="JPEG quality")
    out = parser.add_argument_group("series and output")
    out.add_argument("--sweep", type=_parse_sweep, metavar="clients=1,2,4,8,16",
                     help="run once per client count (each mode) and print a table")
    out.add_argument("--json", type=Path, metavar="OUT", help="write every result here")
    out.add_argument("--plot", type=Path, metavar="OUT.png", help="latency and fps against clients (needs matplotlib)")
    out.add_argument("--quiet", action="store_true", help="no progress line")
    out.add_argument("--log-level", default="WARNING", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("server_args", nargs="*", metavar="-- SERVER_ARGS",
                        help="with --spawn: arguments for python -m server")
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = {key: value for key, value in vars(args).items() if key not in ("token", "json", "plot")}
    return {key: str(value) if isinstance(value, Path) else value for key, value in settings.items()}


async def _run_all(points: Sequence[ProbeConfig], args: argparse.Namespace) -> list[ProbeResult]:
    results: list[ProbeResult] = []
    for point in points:
        result = await run_probe(point)
        results.append(result)
        if args.sweep is None:
            print(client_table(result) + "\n", flush=True)
        if result.problems:
            print(mismatch_report(result), file=sys.stderr, flush=True)
        if args.json is not None:  # after every run: a sweep cut short keeps what it measured
            write_json(args.json, _settings(args), results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.server_args and not args.spawn:
        parser.error("arguments after -- go to a server the probe starts: add --spawn")
    if args.plot is not None and not plot_available():
        print(f"error: {PLOT_MISSING}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config = ProbeConfig(
        server_url=args.server_url, spawn=args.spawn, server_args=tuple(args.server_args),
        token=args.token or os.environ.get(TOKEN_ENV) or None, ca_file=args.ca_file, insecure=args.insecure,
        clients=args.clients, processes=args.processes, fps=args.fps, duration_s=args.duration, warmup_s=args.warmup,
        in_flight=args.in_flight, pacing=args.pacing, scene=args.scene, width=args.width, height=args.height, quality=args.quality,
        progress=not args.quiet,
    )
    modes = MODES if args.mode == "both" else (args.mode,)
    points = sweep_points(config, args.sweep or [args.clients], modes)
    try:
        results = run_loop(_run_all(points, args))
    except (ClientError, ProbeError, ServerStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    print(sweep_table(results), flush=True)
    if args.plot is not None:
        target = "spawned: " + " ".join(config.server_args) if config.spawn else config.server_url
        plot(args.plot, results, f"{target} ({args.scene}, {args.width}x{args.height}, "
                                 f"{args.fps:g} fps/client, in flight {args.in_flight})")
        print(f"plot: {args.plot}")
    if any(result.problems for result in results):
        print("error: the server's accounting did not add up (see the !!! lines above)", file=sys.stderr)
        return EXIT_MISMATCH
    return 0


if __name__ == "__main__":
    sys.exit(main())
