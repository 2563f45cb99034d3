"""The latency probe against real spawned servers: its numbers must agree with the server's own.

Every run here spawns `python -m server --frame-processor passthrough` on a free port, so
these are end-to-end: real sockets, real JPEGs, the server's real counters.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from perf import latency_probe, probe_report
from perf.frames import moving_sequence
from perf.latency_probe import ProbeConfig, run_probe
from perf.probe_results import FRAME_COUNTERS, ClientResult, ProbeResult

ROOT = Path(__file__).resolve().parents[2]
PASSTHROUGH = ("--frame-processor", "passthrough")


def assert_agrees_with_server(result: ProbeResult) -> None:
    assert result.problems == []
    delta = result.server_delta
    assert result.sent == delta["frames_received"] > 0
    assert result.answered == delta["frames_processed"] > 0
    assert result.superseded == delta["frames_superseded"]
    assert result.failed == delta["frames_failed"] == 0
    assert delta["frames_received"] == delta["frames_processed"] + delta["frames_superseded"] + delta["frames_failed"]
    assert result.server_after["frames_in_flight"] == 0
    for client in result.per_client:
        assert client.sent == client.server["frames_received"]
        assert client.answered == client.server["frames_processed"] == len(client.latencies_s) + len(
            client.drain_latencies_s)
        assert client.sent == client.answered + client.superseded + client.failed
        assert client.errors == client.timeouts == 0
        latency = client.latency
        assert 0 < latency.p50_ms <= latency.p90_ms <= latency.p95_ms <= latency.p99_ms <= latency.max_ms < 5000
    latency = result.latency
    assert 0 < latency.p50_ms <= latency.p90_ms <= latency.p95_ms <= latency.p99_ms <= latency.max_ms


def frame_sizes(client: ClientResult, result: ProbeResult) -> tuple[int, int]:
    sizes = [len(jpeg) for jpeg in moving_sequence(result.scene, result.width, result.height, 85, client.index)]
    return min(sizes), max(sizes)


async def test_json_paced_run_agrees_with_the_servers_stats():
    result = await run_probe(ProbeConfig(spawn=True, server_args=PASSTHROUGH, clients=2, mode="json", fps=30,
                                         duration_s=3, warmup_s=1))
    assert_agrees_with_server(result)
    assert [client.source for client in result.per_client] == ["tom", "astronaut"]  # each its own face
    for client in result.per_client:
        assert 2.9 < client.seconds < 4.5
        assert 20 < client.fps <= 31  # paced at 30/s; a passthrough server keeps up
        smallest, largest = frame_sizes(client, result)
        assert smallest * 4 / 3 < client.bytes_up / client.sent < largest * 4 / 3 + 200  # base64 in JSON
    assert result.batch_size_avg >= 1


async def test_binary_unpaced_run_over_two_processes_agrees_with_the_servers_stats():
    # The server takes at most 20 frames/s per client: the rest of an unpaced stream must be superseded.
    result = await run_probe(ProbeConfig(spawn=True, server_args=(*PASSTHROUGH, "--max-client-fps", "20"), clients=2,
                                         processes=2, mode="binary", fps=0, duration_s=3, warmup_s=1))
    assert_agrees_with_server(result)
    assert result.processes == 2
    assert result.superseded > 0
    for client in result.per_client:
        assert client.fps < 22
        smallest, largest = frame_sizes(client, result)
        assert smallest + 16 <= client.bytes_up / client.sent <= largest + 16  # the 16-byte header, then the JPEG


async def test_token_is_sent_on_the_websocket_and_to_stats():
    result = await run_probe(ProbeConfig(spawn=True, server_args=(*PASSTHROUGH, "--token", "s3cret"), token="s3cret",
                                         clients=1, duration_s=1, warmup_s=0))
    assert_agrees_with_server(result)


def test_accounting_mismatches_are_found():
    client = ClientResult(index=0, mode="binary", source="tom", seconds=1.0, sent=10, answered=8, skipped=0, errors=0,
                          timeouts=0, bytes_up=1, bytes_down=1, latencies_s=[0.01] * 8, server_in_flight=0,
                          server={"frames_received": 9, "frames_processed": 8, "frames_superseded": 1,
                                  "frames_failed": 0, "frames_passthrough": 0})
    before = dict.fromkeys(FRAME_COUNTERS, 0) | {"batches": 0, "batched_frames": 0}
    after = {"frames_received": 9, "frames_processed": 7, "frames_superseded": 1, "frames_failed": 0,
             "frames_in_flight": 0, "batches": 8, "batched_frames": 8}
    result = ProbeResult(mode="binary", clients=1, processes=1, fps_target=30, in_flight=2, duration_s=1, warmup_s=0,
                         scene="group", width=640, height=480, target="ws://x/", server_args=[], per_client=[client],
                         server_before=before, server_after=after)
    result.check()
    assert result.problems == [
        "client 0 (binary): sent 10 frames, the server received 9",
        "server: received 9 != processed 7 + superseded 1 + failed 0 (= 8)",
        "server: frames_processed rose by 7, its clients' frames_processed by 8",
    ]
    assert "ACCOUNTING MISMATCH" in probe_report.mismatch_report(result)


def test_a_mismatch_exits_loudly(monkeypatch, capsys):
    async def fake_run_probe(config: ProbeConfig) -> ProbeResult:
        result = ProbeResult(mode=config.mode, clients=config.clients, processes=1, fps_target=30, in_flight=2,
                             duration_s=1, warmup_s=0, scene="group", width=640, height=480, target="ws://x/",
                             server_args=None, per_client=[], server_before={}, server_after={})
        result.problems = ["server: received 3 != processed 2 + superseded 0 + failed 0 (= 2)"]
        return result

    monkeypatch.setattr(latency_probe, "run_probe", fake_run_probe)
    assert latency_probe.main(["--quiet"]) == latency_probe.EXIT_MISMATCH
    err = capsys.readouterr().err
    assert "!!! ACCOUNTING MISMATCH" in err and "received 3 != processed 2" in err


def test_plot_without_matplotlib_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setattr(latency_probe, "plot_available", lambda: False)
    assert latency_probe.main(["--plot", "out.png"]) == latency_probe.EXIT_USAGE
    assert capsys.readouterr().err.strip() == f"error: {probe_report.PLOT_MISSING}"


def test_plot_draws_latency_and_fps_against_clients(tmp_path):
    pytest.importorskip("matplotlib")
    results = []
    for clients in (1, 2, 4):
        for mode in ("json", "binary"):
            per_client = [ClientResult(index=i, mode=mode, source="tom", seconds=2.0, sent=60, answered=60, skipped=0,
                                       errors=0, timeouts=0, bytes_up=1, bytes_down=1, server_in_flight=0,
                                       server=dict.fromkeys(FRAME_COUNTERS, 0),
                                       latencies_s=[0.01 * clients, 0.02 * clients]) for i in range(clients)]
            results.append(ProbeResult(mode=mode, clients=clients, processes=1, fps_target=30, in_flight=2,
                                       duration_s=2, warmup_s=0, scene="group", width=640, height=480, target="ws://x/",
                                       server_args=None, per_client=per_client, server_before={}, server_after={}))
    path = tmp_path / "probe.png"
    probe_report.plot(path, results, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "perf/latency_probe.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_cli_help():
    run = run_cli("--help")
    assert run.returncode == 0
    for option in ("--server-url", "--spawn", "--clients", "--processes", "--fps", "--duration", "--warmup", "--mode",
                   "--in-flight", "--sweep", "--json", "--plot", "--token"):
        assert option in run.stdout


def test_cli_sweep_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "sweep.json"
    run = run_cli("--spawn", "--sweep", "clients=1,2", "--duration", "2", "--warmup", "0.5", "--json", str(out),
                  "--", *PASSTHROUGH)
    assert run.returncode == 0, run.stderr
    header, rule, *rows = run.stdout.strip().splitlines()
    assert header.split() == ["clients", "mode", "fps", "fps/cl", "p50", "ms", "p90", "ms", "p95", "ms", "p99", "ms",
                              "max", "ms", "supers%", "errors", "batch", "check"]
    assert set(rule) == {"-"}
    assert [row.split()[:2] for row in rows] == [["1", "binary"], ["2", "binary"]]
    assert all(row.split()[-1] == "ok" for row in rows)
    assert "binary x2: measure" in run.stderr  # the progress line
    document = json.loads(out.read_text())
    assert document["settings"]["sweep"] == [1, 2]
    assert [r["clients"] for r in document["results"]] == [1, 2]
    for entry, row in zip(document["results"], rows):
        total = entry["total"]
        assert entry["problems"] == []
        assert total["answered"] == entry["server_delta"]["frames_processed"]
        assert len(entry["per_client"]) == entry["clients"]
        assert f"{total['fps']:.1f}" == row.split()[2]
        assert not math.isnan(total["latency_ms"]["p50_ms"])
