"""Inference devices: one batcher, one pipeline and one set of model sessions per device.

A new client goes to the device with the least measured load: the fraction of recent time
its models were busy, then how long frames recently waited for it, and only then how many
clients it has (client counts lie: one 4K client costs more than five small ones).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .batcher import Batcher
    from .pipeline import Pipeline

LOAD_WINDOW_S = 5.0


@dataclass
class DeviceLoad:
    """What a device did in the last few seconds, measured by its batcher."""

    window_s: float = LOAD_WINDOW_S
    batches: collections.deque[tuple[float, float, int]] = field(default_factory=collections.deque)  # end, busy s, frames
    queue_wait_s: float = 0.0  # exponentially weighted, per frame

    def record(self, busy_s: float, frames: int, waits: list[float]) -> None:
        now = time.monotonic()
        self.batches.append((now, busy_s, frames))
        for wait in waits:
            self.queue_wait_s += 0.1 * (wait - self.queue_wait_s)
        self._forget_before(now - self.window_s)

    def _forget_before(self, start: float) -> None:
        while self.batches and self.batches[0][0] < start:
            self.batches.popleft()

    def busy_fraction(self) -> float:
        self._forget_before(time.monotonic() - self.window_s)
        return min(1.0, sum(busy for _, busy, _ in self.batches) / self.window_s)

    def frames_per_s(self) -> float:
        self._forget_before(time.monotonic() - self.window_s)
        return sum(frames for _, _, frames in self.batches) / self.window_s


@dataclass
class Device:
    index: int
    pipeline: "Pipeline"
    batcher: "Batcher"
    load: DeviceLoad
    default_sources: dict[str, object] | None = None
    clients: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "device": self.index,
            "clients": self.clients,
            "busy_fraction": round(self.load.busy_fraction(), 4),
            "frames_per_s": round(self.load.frames_per_s(), 2),
            "queue_wait_avg": round(self.load.queue_wait_s, 5),
        }


def least_loaded(devices: list[Device]) -> Device:
    """Coarse load first (busy to 10%, waits to 10 ms), so near-equal devices split clients evenly."""
    return min(
        devices,
        key=lambda d: (round(d.load.busy_fraction(), 1), round(d.load.queue_wait_s, 2), d.clients, d.index),
    )
