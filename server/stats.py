"""Frame accounting and server metrics: one set of numbers behind `stats`, `/stats` and `/metrics`.

Counters are plain ints mutated only on the event loop; the Prometheus collector reads
them at scrape time, so the WebSocket `stats`, the JSON route and the exposition agree.
Invariant, per client and in total, at any quiescent moment:
    received == processed + superseded + failed
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .pipeline import BatchTimings

LATENCY_WINDOW = 4096  # recent frames behind the percentiles in `stats`
SNAPSHOT_MAX_AGE_S = 0.2
OUTCOMES = ("received", "processed", "superseded", "failed", "passthrough")  # FrameCounts' fields
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


@dataclass
class FrameCounts:
    """How frames ended: `processed` were sent back, `superseded` were replaced by a newer
    frame of the same client (before or after processing), `failed` got an error or lost
    their client. `passthrough` (a subset of processed) had no source face to apply."""

    received: int = 0
    processed: int = 0
    superseded: int = 0
    failed: int = 0
    passthrough: int = 0

    @property
    def in_flight(self) -> int:
        return self.received - self.processed - self.superseded - self.failed

    def as_dict(self) -> dict[str, int]:
        return {
            "frames_received": self.received,
            "frames_processed": self.processed,
            "frames_superseded": self.superseded,
            "frames_failed": self.failed,
            "frames_passthrough": self.passthrough,
            "frames_in_flight": self.in_flight,
        }


@dataclass
class ServerStats:
    frames: FrameCounts = field(default_factory=FrameCounts)
    transport_frames: collections.defaultdict[str, FrameCounts] = field(
        default_factory=lambda: collections.defaultdict(FrameCounts))  # the same outcomes, per transport
    transport_clients: collections.Counter[str] = field(default_factory=collections.Counter)  # open sessions
    clients_total: int = 0
    batches: int = 0
    batched_frames: int = 0
    device_s: float = 0.0  # model calls on the device
    device_wait_s: float = 0.0  # batches waiting for the device
    host_cpu_s: collections.Counter[str] = field(default_factory=collections.Counter)  # per host stage
    batch_transports: collections.Counter[str] = field(default_factory=collections.Counter)  # "webrtc+websocket" -> batches
    batch_clients: collections.Counter[int] = field(default_factory=collections.Counter)  # clients in a batch -> batches
    processing_s_total: float = 0.0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    started_monotonic: float = field(default_factory=time.monotonic)
    server_times: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    devices: list = field(default_factory=list)  # server.devices.Device, set once they are up
    _slow: tuple[float, dict[str, object]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.latency_histogram = Histogram(
            "facestream_server_time_seconds",
            "Time from a frame's arrival to its result being handed to the socket",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StatsCollector(self))

    @property
    def connected_clients(self) -> int:
        return sum(self.transport_clients.values())

    def record_batch(self, size: int, timings: "BatchTimings", transports: Iterable[str] = (), *, clients: int) -> None:
        """One batch of `size` frames from `clients` clients (fewer than `size` only for a job,
        whose queued frames may share a batch; a live client has one frame in its mailbox)."""
        self.batches += 1
        self.batch_transports["+".join(sorted(transports))] += 1
        self.batch_clients[clients] += 1
        self.batched_frames += size
        self.device_s += timings.device_s
        self.device_wait_s += timings.device_wait_s
        self.host_cpu_s.update(timings.host_cpu_s)
        self.processing_s_total += size * timings.wall_s  # each frame spent the batch's time in the worker

    def record_delivery(self, server_time_s: float) -> None:
        self.server_times.append(server_time_s)
        self.latency_histogram.observe(server_time_s)

    def snapshot(self) -> dict[str, object]:
        """The `data` of the `stats` message: the original fields first, then ours. The counters
        are always current (clients check their books against them); the percentiles and the
        devices' fits are made at most every `SNAPSHOT_MAX_AGE_S`, so a flood of requests costs
        little."""
        now = time.monotonic()
        if self._slow is None or now - self._slow[0] >= SNAPSHOT_MAX_AGE_S:
            self._slow = (now, self._slow_fields())
        per_frame = self.batched_frames or 1
        decode_s, encode_s = self.host_cpu_s["decode"], self.host_cpu_s["encode"]
        data: dict[str, object] = {
            "connected_clients": self.connected_clients,
            "frames_processed": self.frames.processed,
            "processing_time_avg": self.processing_s_total / per_frame,
            **self.frames.as_dict(),
            "clients_total": self.clients_total,
            "batches": self.batches,
            "batched_frames": self.batched_frames,
            "batch_size_avg": self.batched_frames / (self.batches or 1),
            "batches_by_transports": dict(self.batch_transports),
            "batches_by_clients": {str(clients): count for clients, count in sorted(self.batch_clients.items())},
            "decode_time_avg": decode_s / per_frame,
            "process_time_avg": (self.device_s + sum(self.host_cpu_s.values()) - decode_s - encode_s) / per_frame,
            "encode_time_avg": encode_s / per_frame,
            "device_time_avg": self.device_s / per_frame,
            "device_wait_avg": self.device_wait_s / per_frame,
            "host_cpu_ms_per_frame": {stage: round(1000 * s / per_frame, 3) for stage, s in sorted(self.host_cpu_s.items())},
            **self._slow[1],
            "errors": dict(self.errors),
            "transports": {name: {"connected_clients": self.transport_clients[name], **counts.as_dict()}
                           for name, counts in sorted(self.transport_frames.items())},
            "uptime_s": now - self.started_monotonic,
        }
        return data

    def _slow_fields(self) -> dict[str, object]:
        times = np.fromiter(self.server_times, dtype=np.float64)
        p50, p90, p99 = (np.percentile(times, (50, 90, 99)) if times.size else (0.0, 0.0, 0.0))
        return {
            "server_time_p50": float(p50),
            "server_time_p90": float(p90),
            "server_time_p99": float(p99),
            "devices": [device.as_dict() for device in self.devices],
        }


class _StatsCollector(Collector):
    """Exposes `ServerStats` in the Prometheus text format without a second set of counters."""

    def __init__(self, stats: ServerStats) -> None:
        self._stats = stats

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[object]:
        stats = self._stats
        frames = CounterMetricFamily("facestream_frames", "Frames by outcome", labels=["outcome"])
        for outcome in OUTCOMES:
            frames.add_metric([outcome], getattr(stats.frames, outcome))
        yield frames
        by_transport = CounterMetricFamily("facestream_transport_frames", "Frames by transport and outcome",
                                           labels=["transport", "outcome"])
        for transport, counts in sorted(stats.transport_frames.items()):
            for outcome in OUTCOMES:
                by_transport.add_metric([transport, outcome], getattr(counts, outcome))
        yield by_transport
        clients = GaugeMetricFamily("facestream_transport_clients", "Open client sessions by transport",
                                    labels=["transport"])
        for transport, count in sorted(stats.transport_clients.items()):
            clients.add_metric([transport], count)
        yield clients
        yield GaugeMetricFamily("facestream_connected_clients", "Open client sessions", value=stats.connected_clients)
        yield CounterMetricFamily("facestream_clients", "Client sessions opened", value=stats.clients_total)
        yield CounterMetricFamily("facestream_batches", "Batches run", value=stats.batches)
        yield CounterMetricFamily("facestream_batched_frames", "Frames run in batches", value=stats.batched_frames)
        stage = CounterMetricFamily("facestream_host_cpu_seconds", "Host CPU time by pipeline stage", labels=["stage"])
        for name, seconds in sorted(stats.host_cpu_s.items()):
            stage.add_metric([name], seconds)
        yield stage
        yield CounterMetricFamily("facestream_device_seconds", "Model time on the devices", value=stats.device_s)
        yield CounterMetricFamily("facestream_device_wait_seconds", "Batches waiting for a device", value=stats.device_wait_s)
        per_device = {
            "clients": GaugeMetricFamily("facestream_device_clients", "Clients assigned", labels=["device"]),
            "busy_fraction": GaugeMetricFamily("facestream_device_busy_ratio", "Recent busy time fraction", labels=["device"]),
            "frames_per_s": GaugeMetricFamily("facestream_device_frames_per_second", "Recent frames/s", labels=["device"]),
            "queue_wait_avg": GaugeMetricFamily("facestream_device_queue_wait_seconds", "Recent wait for a batch", labels=["device"]),
            "batch_size": GaugeMetricFamily("facestream_device_batch_size", "Frames in the latest batch", labels=["device"]),
            "latency_target_ms": GaugeMetricFamily("facestream_device_latency_target_milliseconds",
                                                   "Take-to-results time batches are sized for", labels=["device"]),
            "batches_in_flight": GaugeMetricFamily("facestream_device_batches_in_flight", "Batches running", labels=["device"]),
        }
        costs = {
            "fixed_ms": GaugeMetricFamily("facestream_cost_fixed_milliseconds", "Fitted fixed cost per call or batch",
                                          labels=["device", "step"]),
            "per_item_ms": GaugeMetricFamily("facestream_cost_per_item_milliseconds", "Fitted cost per item",
                                             labels=["device", "step"]),
        }
        for device in stats.devices:
            values = device.as_dict()
            for key, family in per_device.items():
                family.add_metric([str(device.index)], values[key])
            fits = {"batch": values["batch_time"], "batch_device": values["batch_device_time"],
                    **{f"model:{step}": fit for step, fit in values["model_costs"].items()}}
            for step, fit in fits.items():
                for key, family in costs.items():
                    family.add_metric([str(device.index), step], fit[key])
        yield from per_device.values()
        yield from costs.values()
        errors = CounterMetricFamily("facestream_errors", "Error messages sent, by code", labels=["code"])
        for code, count in sorted(stats.errors.items()):
            errors.add_metric([code], count)
        yield errors
