"""What the latency probe measured, per client and in total, and whether the server's books agree.

Plain dataclasses that cross process boundaries (pickle) and end up in `--json`. The probe
trusts nothing it cannot cross-check: each client's own counts must match the server's
counters for that connection, and the server's totals must satisfy the accounting
invariant `received == processed + superseded + failed` once nothing is in flight.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from client.stats import percentile

FRAME_COUNTERS = ("frames_received", "frames_processed", "frames_superseded", "frames_failed", "frames_passthrough")
BATCH_COUNTERS = ("batches", "batched_frames")


def counter_deltas(before: dict[str, Any], after: dict[str, Any], keys: tuple[str, ...]) -> dict[str, int]:
    return {key: int(after.get(key, 0)) - int(before.get(key, 0)) for key in keys}


@dataclass(frozen=True)
class Latency:
    """Round-trip percentiles in milliseconds (NaN without samples)."""

    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_s: list[float]) -> Latency:
        if not samples_s:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(*(percentile(samples_s, q) * 1000 for q in (50, 90, 95, 99)), max(samples_s) * 1000)


@dataclass
class ClientResult:
    """One client's measured phase: its own counts, and the server's counts for its connection."""

    index: int
    mode: str
    source: str  # the source face it wore
    seconds: float
    sent: int
    answered: int
    skipped: int
    errors: int
    timeouts: int
    bytes_up: int
    bytes_down: int
    server: dict[str, int]  # this connection's frame counters on the server, over the phase
    server_in_flight: int  # frames of this connection the server still held at the end
    latencies_s: list[float] = field(default_factory=list, repr=False)  # while streaming
    drain_latencies_s: list[float] = field(default_factory=list, repr=False)  # after the last send

    @property
    def superseded(self) -> int:
        return self.server["frames_superseded"]

    @property
    def failed(self) -> int:
        return self.server["frames_failed"]

    @property
    def fps(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def latency(self) -> Latency:
        return Latency.of(self.latencies_s)

    def problems(self) -> list[str]:
        """Where this client's own counts and the server's disagree."""
        name = f"client {self.index} ({self.mode})"
        found = []
        if self.server["frames_received"] != self.sent:
            found.append(f"{name}: sent {self.sent} frames, the server received {self.server['frames_received']}")
        if self.server["frames_processed"] != self.answered:
            found.append(f"{name}: got {self.answered} answers, the server processed {self.server['frames_processed']}")
        if self.server_in_flight:
            found.append(f"{name}: the server still holds {self.server_in_flight} of its frames after it drained")
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_s"], data["drain_latencies_s"]
        latency = self.latency
        data.update(superseded=self.superseded, failed=self.failed, fps=self.fps, latency_ms=asdict(latency),
                    drain_answers=len(self.drain_latencies_s),
                    drain_max_ms=max(self.drain_latencies_s) * 1000 if self.drain_latencies_s else None)
        return data


@dataclass
class ProbeResult:
    """One run: `clients` clients in one `mode` against one server."""

    mode: str
    clients: int
    processes: int
    fps_target: float  # 0: as fast as the window allows
    in_flight: int
    duration_s: float
    warmup_s: float
    scene: str
    width: int
    height: int
    target: str
    server_args: list[str] | None  # None: an external server
    per_client: list[ClientResult]
    server_before: dict[str, Any]
    server_after: dict[str, Any]
    server_cpu_s: float | None = None  # CPU the spawned server used during the measured phase
    problems: list[str] = field(default_factory=list)

    # ---- totals ----------------------------------------------------------------
    def total(self, name: str) -> int:
        """One per-client count (`sent`, `timeouts`, ...) summed over the clients."""
        return sum(getattr(client, name) for client in self.per_client)

    @property
    def sent(self) -> int:
        return self.total("sent")

    @property
    def answered(self) -> int:
        return self.total("answered")

    @property
    def superseded(self) -> int:
        return self.total("superseded")

    @property
    def failed(self) -> int:
        return self.total("failed")

    @property
    def errors(self) -> int:
        return self.total("errors") + self.total("timeouts")

    @property
    def superseded_pct(self) -> float:
        return 100 * self.superseded / self.sent if self.sent else 0.0

    @property
    def fps(self) -> float:
        """Answers per second, all clients together (they stream over the same interval)."""
        return sum(client.fps for client in self.per_client)

    @property
    def fps_per_client(self) -> float:
        return self.fps / len(self.per_client) if self.per_client else 0.0

    @property
    def latency(self) -> Latency:
        return Latency.of([s for client in self.per_client for s in client.latencies_s])

    @property
    def client_p95_median_ms(self) -> float:
        """The median over clients of each client's own p95: what a typical client sees at its worst."""
        values = sorted(client.latency.p95_ms for client in self.per_client if client.latencies_s)
        return percentile(values, 50) if values else math.nan

    @property
    def bytes_per_s(self) -> tuple[float, float]:
        """(up, down), all clients together."""
        up = sum(c.bytes_up / c.seconds for c in self.per_client if c.seconds > 0)
        down = sum(c.bytes_down / c.seconds for c in self.per_client if c.seconds > 0)
        return up, down

    @property
    def server_delta(self) -> dict[str, int]:
        return counter_deltas(self.server_before, self.server_after, FRAME_COUNTERS + BATCH_COUNTERS)

    @property
    def batch_size_avg(self) -> float:
        delta = self.server_delta
        return delta["batched_frames"] / delta["batches"] if delta["batches"] else 0.0

    def check(self) -> None:
        """Fill `problems`: each client against the server, and the server's own invariant."""
        self.problems = [problem for client in self.per_client for problem in client.problems()]
        delta = self.server_delta
        ended = delta["frames_processed"] + delta["frames_superseded"] + delta["frames_failed"]
        in_flight = int(self.server_after.get("frames_in_flight", 0))
        if in_flight:
            self.problems.append(f"server: {in_flight} frames still in flight after every client drained")
        elif delta["frames_received"] != ended:
            self.problems.append(
                f"server: received {delta['frames_received']} != processed {delta['frames_processed']} + superseded "
                f"{delta['frames_superseded']} + failed {delta['frames_failed']} (= {ended})")
        if self.server_args is not None:  # our own server: nobody else streamed to it
            for key in ("frames_received", "frames_processed", "frames_superseded", "frames_failed"):
                clients_total = sum(client.server[key] for client in self.per_client)
                if clients_total != delta[key]:
                    self.problems.append(f"server: {key} rose by {delta[key]}, its clients' {key} by {clients_total}")

    def to_dict(self) -> dict[str, Any]:
        up, down = self.bytes_per_s
        data = {name: getattr(self, name) for name in (
            "mode", "clients", "processes", "fps_target", "in_flight", "duration_s", "warmup_s", "scene", "width",
            "height", "target", "server_args", "server_cpu_s", "problems")}
        data["total"] = {
            "sent": self.sent, "answered": self.answered, "superseded": self.superseded, "failed": self.failed,
            "errors": self.errors, "superseded_pct": self.superseded_pct, "fps": self.fps,
            "fps_per_client": self.fps_per_client, "latency_ms": asdict(self.latency),
            "client_p95_median_ms": self.client_p95_median_ms,
            "bytes_up_per_s": up, "bytes_down_per_s": down, "batch_size_avg": self.batch_size_avg,
        }
        data["server_delta"] = self.server_delta
        data["server_before"] = self.server_before
        data["server_after"] = self.server_after
        data["per_client"] = [client.to_dict() for client in self.per_client]
        return data
