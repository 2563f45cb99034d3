"""Latency under load, as ratios measured side by side: does latency stay bounded as clients grow?

Each scenario compares a few clients with one client on a fresh server each time, the runs
alternating (one, many, one, many, ...) so a machine that drifts hits both alike; with
`--repeat R` it reports the median of each figure. Real swap, real faces, 640x480:

- `open-loop`: the original Deep-Live-Cam clients (JSON or binary, no window, no pacing,
  30 fps): 1 vs 8 clients on insightface's t1.jpg (six faces). Goal: p99 within 2x of
  one client's, total replies/s not below one client's.
- `own-clients`: the project's own client processes (`python -m client --input t1.jpg
  --headless --binary`), 1 vs 6, each printing its p95 at exit. Goal: the median p95
  within 2x of one client's.
- `one-face`: the probe's clients (window 2, paced, as the client) on the astronaut, 1 vs 4.
  Goal: p50 within 1.2x of one client's.
- `passthrough`: 16 probe clients x 30 fps, binary, transport only. Goal: at least 330
  replies/s with p99 at most 120 ms.

    .venv/bin/python perf/latency_bench.py                     # every scenario once
    .venv/bin/python perf/latency_bench.py --repeat 3 open-loop own-clients
    .venv/bin/python perf/latency_bench.py one-face -- --latency-target-ms 40

Arguments after `--` go to every server (`python -m server`); the default processor is
`classic` (passthrough for the passthrough scenario). The simulated GPU has its own
benchmark: perf/gpu_sim_bench.py.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Awaitable, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from client.__main__ import run_loop  # noqa: E402
from client.images import encode_jpeg  # noqa: E402
from perf.frames import photo, source_face  # noqa: E402
from perf.latency_probe import ProbeConfig, run_probe  # noqa: E402
from perf.spawn import ROOT, spawned_server  # noqa: E402

SUMMARY = re.compile(r"latency p50 ([0-9.]+) ms, p95 ([0-9.]+) ms")
Figures = dict[str, float]


@dataclass(frozen=True)
class Scenario:
    name: str
    few: int  # clients in the "one client" run
    many: int
    run: Callable[[int, list[str], "Options"], Awaitable[Figures]]
    goals: Callable[[Figures, Figures], list[str]]  # one line per goal, from the medians of (few, many)
    processor: str = "classic"


@dataclass(frozen=True)
class Options:
    duration_s: float
    warmup_s: float


async def probe(clients: int, server_args: list[str], options: Options, **settings: object) -> Figures:
    config = ProbeConfig(spawn=True, server_args=tuple(server_args), clients=clients, duration_s=options.duration_s,
                         warmup_s=options.warmup_s, progress=False)
    result = await run_probe(replace(config, **settings))  # type: ignore[arg-type]
    if result.problems:
        raise RuntimeError("the server's accounting did not add up: " + "; ".join(result.problems))
    latency = result.latency
    return {"fps": result.fps, "p50": latency.p50_ms, "p95": latency.p95_ms, "p99": latency.p99_ms,
            "client_p95": result.client_p95_median_ms, "batch": result.batch_size_avg}


async def own_clients(clients: int, server_args: list[str], options: Options) -> Figures:
    """`clients` real client processes streaming t1.jpg; each prints its p50/p95 when stopped."""
    group = Path(tempfile.mkdtemp(prefix="facestream-bench-"))
    scene = group / "t1.jpg"
    scene.write_bytes(encode_jpeg(photo("group"), 95))
    faces = []
    for index in range(clients):
        name, jpeg = source_face(index)
        faces.append(group / f"{index}-{name}.jpg")
        faces[-1].write_bytes(jpeg)
    async with spawned_server(server_args) as server:
        processes = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client", "-s", str(face), "--input", str(scene), "--headless", "--binary",
            "--server-url", server.ws_url, "--log-level", "WARNING", cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) for face in faces]
        await asyncio.sleep(options.warmup_s + options.duration_s)
        for process in processes:
            process.send_signal(signal.SIGINT)
        outputs = [(await process.communicate())[0].decode(errors="replace") for process in processes]
    figures = [SUMMARY.search(output) for output in outputs]
    if not all(figures):
        raise RuntimeError("a client printed no summary:\n" + "\n".join(outputs))
    p95s = sorted(float(match.group(2)) for match in figures if match)
    return {"client_p95": statistics.median(p95s), "p50": statistics.median(float(m.group(1)) for m in figures if m)}


def _ratio(few: Figures, many: Figures, key: str) -> float:
    return many[key] / few[key] if few[key] else float("nan")


def _goal(text: str, met: bool) -> str:
    return f"{'met    ' if met else 'NOT MET'}  {text}"


SCENARIOS = {scenario.name: scenario for scenario in (
    Scenario("open-loop", 1, 8,
             lambda n, args, o: probe(n, args, o, in_flight=1000, pacing=False),
             lambda few, many: [
                 _goal(f"p99 {many['p99']:.0f} ms vs {few['p99']:.0f} ms: {_ratio(few, many, 'p99'):.2f}x (goal <= 2x)",
                       _ratio(few, many, "p99") <= 2),
                 _goal(f"replies/s {many['fps']:.1f} vs {few['fps']:.1f} (goal: not below one client's)",
                       many["fps"] >= few["fps"])]),
    Scenario("own-clients", 1, 6, own_clients,
             lambda few, many: [_goal(
                 f"median p95 {many['client_p95']:.0f} ms vs {few['client_p95']:.0f} ms: "
                 f"{_ratio(few, many, 'client_p95'):.2f}x (goal <= 2x)", _ratio(few, many, "client_p95") <= 2)]),
    Scenario("one-face", 1, 4,
             lambda n, args, o: probe(n, args, o, scene="astronaut"),
             lambda few, many: [
                 _goal(f"p50 {many['p50']:.1f} ms vs {few['p50']:.1f} ms: {_ratio(few, many, 'p50'):.2f}x (goal <= 1.2x)",
                       _ratio(few, many, "p50") <= 1.2),
                 _goal(f"4 clients: {many['fps']:.1f} replies/s, batch {many['batch']:.2f}", True)]),
    Scenario("passthrough", 16, 16,
             lambda n, args, o: probe(n, args, o),
             lambda few, many: [_goal(f"{many['fps']:.0f} replies/s (goal >= 330), p99 {many['p99']:.0f} ms "
                                      f"(goal <= 120)", many["fps"] >= 330 and many["p99"] <= 120)],
             processor="passthrough"),
)}


async def run_scenario(scenario: Scenario, repeat: int, server_args: list[str], options: Options) -> list[str]:
    args = ["--frame-processor", scenario.processor, *server_args]
    runs: dict[int, list[Figures]] = {scenario.few: [], scenario.many: []}
    counts = [scenario.few] if scenario.few == scenario.many else [scenario.few, scenario.many]
    for attempt in range(repeat):
        for clients in counts:
            figures = await scenario.run(clients, args, options)
            runs[clients].append(figures)
            shown = ", ".join(f"{key} {value:.1f}" for key, value in figures.items())
            print(f"  {scenario.name} run {attempt + 1}/{repeat}, {clients} client(s): {shown}", flush=True)
    few, many = ({key: statistics.median(r[key] for r in runs[n]) for key in runs[n][0]}
                 for n in (scenario.few, scenario.many))
    return scenario.goals(few, many)


async def main_async(names: Sequence[str], repeat: int, server_args: list[str], options: Options) -> None:
    report = []
    for name in names:
        print(f"{name}:", flush=True)
        report += [f"{name}: {line}" for line in await run_scenario(SCENARIOS[name], repeat, server_args, options)]
    print("\n" + "\n".join(report), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    server_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"which to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each client count; medians are reported")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds streamed before measuring")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown or args.repeat < 1:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}" if unknown
                     else "--repeat must be at least 1")
    run_loop(main_async(args.scenarios or list(SCENARIOS), args.repeat, server_args,
                        Options(args.duration, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
