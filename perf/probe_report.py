"""How the latency probe shows its results: text tables, the `--json` file, the `--plot` PNG.

Formatting only; the numbers come from `probe_results`. matplotlib is an optional extra
(`pip install facestream[plot]`), imported only when a plot is asked for.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson

from .probe_results import Latency, ProbeResult

PLOT_MISSING = "--plot needs matplotlib: .venv/bin/pip install 'matplotlib>=3.7' (the project's `plot` extra)"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _table(columns: Sequence[tuple[str, int]], rows: Iterable[Sequence[str]]) -> list[str]:
    """Right-aligned columns under a header and a rule."""
    header = " ".join(f"{title:>{width}}" for title, width in columns)
    lines = [header, "-" * len(header)]
    lines += [" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(row, columns)) for row in rows]
    return lines


def _latency_cells(latency: Latency) -> list[str]:
    return [_ms(latency.p50_ms), _ms(latency.p90_ms), _ms(latency.p95_ms), _ms(latency.p99_ms), _ms(latency.max_ms)]


SWEEP_COLUMNS = (("clients", 7), ("mode", 6), ("fps", 8), ("fps/cl", 7), ("p50 ms", 7), ("p90 ms", 7), ("p95 ms", 7),
                 ("p99 ms", 7), ("max ms", 7), ("supers%", 7), ("errors", 6), ("batch", 5), ("check", 8))
CLIENT_COLUMNS = (("client", 6), ("face", 9), ("sent", 6), ("skip", 5), ("answer", 6), ("supers", 6), ("failed", 6),
                  ("errors", 6), ("lost", 4), ("fps", 6), ("p50 ms", 7), ("p90 ms", 7), ("p95 ms", 7), ("p99 ms", 7),
                  ("max ms", 7), ("up KB/s", 8), ("dn KB/s", 8))


def sweep_table(results: Sequence[ProbeResult]) -> str:
    """One row per run (clients x mode): throughput, latency, what the server dropped, its batching."""
    rows = [[str(r.clients), r.mode, f"{r.fps:.1f}", f"{r.fps_per_client:.1f}", *_latency_cells(r.latency),
             f"{r.superseded_pct:.1f}", str(r.errors), f"{r.batch_size_avg:.2f}", "MISMATCH" if r.problems else "ok"]
            for r in results]
    return "\n".join(_table(SWEEP_COLUMNS, rows))


def client_table(result: ProbeResult) -> str:
    """Every client of one run, a total, then the server's view of the same interval."""
    rows = [[str(c.index), c.source, str(c.sent), str(c.skipped), str(c.answered), str(c.superseded), str(c.failed),
             str(c.errors), str(c.timeouts), f"{c.fps:.1f}", *_latency_cells(c.latency),
             f"{c.bytes_up / c.seconds / 1024:.0f}", f"{c.bytes_down / c.seconds / 1024:.0f}"]
            for c in result.per_client]
    up, down = result.bytes_per_s
    rows.append(["total", "", *(str(result.total(name)) for name in (
        "sent", "skipped", "answered", "superseded", "failed", "errors", "timeouts")),
        f"{result.fps:.1f}", *_latency_cells(result.latency), f"{up / 1024:.0f}", f"{down / 1024:.0f}"])
    delta, after = result.server_delta, result.server_after
    cpu = "" if result.server_cpu_s is None else \
        f", CPU {result.server_cpu_s / max(delta['frames_processed'], 1) * 1000:.2f} ms/frame"
    server = (
        f"server: received {delta['frames_received']}, processed {delta['frames_processed']}, superseded "
        f"{delta['frames_superseded']}, failed {delta['frames_failed']}; batch {result.batch_size_avg:.2f}; "
        f"server time p50 {after.get('server_time_p50', 0) * 1000:.1f} ms, "
        f"p99 {after.get('server_time_p99', 0) * 1000:.1f} ms{cpu}; "
        f"median of the clients' p95: {result.client_p95_median_ms:.1f} ms; "
        f"accounting {'MISMATCH' if result.problems else 'ok'}")
    drained = [s for client in result.per_client for s in client.drain_latencies_s]
    drain = (f"drain: {len(drained)} answers came after the clients' last sends (max {max(drained) * 1000:.1f} ms); "
             "they waited behind every other client's last frame, as no live stream does, and are not in the "
             "percentiles") if drained else "drain: no answers after the last sends"
    title = f"{result.mode}, {result.clients} client(s), {result.duration_s:g} s measured:"
    return "\n".join([title, *_table(CLIENT_COLUMNS, rows), server, drain])


def mismatch_report(result: ProbeResult) -> str:
    """The loud block printed when the numbers do not add up."""
    lines = [f"!!! ACCOUNTING MISMATCH ({result.mode}, {result.clients} clients, {result.target}):"]
    lines += [f"!!!   {problem}" for problem in result.problems]
    return "\n".join(lines)


def write_json(path: Path, settings: dict[str, Any], results: Sequence[ProbeResult]) -> None:
    """All results; NaN (a run without answers) becomes null."""
    document = {"settings": settings, "results": [result.to_dict() for result in results]}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot(path: Path, results: Sequence[ProbeResult], title: str) -> None:
    """Latency percentiles (left) and frames/s (right) against the number of clients, one colour per mode."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot

    figure, (latency_axes, fps_axes) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    counts = sorted({r.clients for r in results})
    for colour, mode in zip(("tab:blue", "tab:orange"), sorted({r.mode for r in results})):
        runs = sorted((r for r in results if r.mode == mode), key=lambda r: r.clients)
        clients = [r.clients for r in runs]
        for name, style in (("p50_ms", "-"), ("p90_ms", "--"), ("p99_ms", ":")):
            latency_axes.plot(clients, [getattr(r.latency, name) for r in runs], style, marker="o", color=colour,
                              label=f"{mode} {name.split('_')[0]}")
        fps_axes.plot(clients, [r.fps for r in runs], "-", marker="o", color=colour, label=f"{mode} total")
        fps_axes.plot(clients, [r.fps_per_client for r in runs], "--", marker="o", color=colour,
                      label=f"{mode} per client")
    for axes, ylabel in ((latency_axes, "round trip (ms)"), (fps_axes, "processed frames/s")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(counts, labels=[str(n) for n in counts])
        axes.set_xlabel("clients")
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
