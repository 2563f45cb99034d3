"""Inference devices: one batcher, one pipeline, one set of model sessions and one device queue each.

A new client goes to the device with the least measured load: the fraction of recent time
its models were busy, then how long frames recently waited for it, and only then how many
clients it has (client counts lie: one 4K client costs more than five small ones).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from models.device import ModelDevice

from .batcher import Batcher
from .pipeline import Pipeline


@dataclass
class Device:
    index: int
    pipeline: Pipeline
    batcher: Batcher
    model_device: ModelDevice
    default_sources: dict[str, object] | None = None
    clients: int = 0

    def as_dict(self) -> dict[str, object]:
        now = time.monotonic()
        scheduling = self.batcher.scheduler.as_dict(now)
        return {
            "device": self.index,
            "clients": self.clients,
            "busy_fraction": round(self.model_device.busy_fraction(), 4),
            "simulated_replay_misses": self.model_device.replay_misses,
            "frames_per_s": scheduling.pop("frames_per_s"),
            "queue_wait_avg": scheduling.pop("queue_wait_avg"),
            **scheduling,
            "model_costs": self.model_device.cost_table(),
        }


def least_loaded(devices: list[Device]) -> Device:
    """Coarse load first (busy to 10%, waits to 10 ms), so near-equal devices split clients evenly."""
    return min(
        devices,
        key=lambda d: (round(d.model_device.busy_fraction(), 1), round(d.batcher.scheduler.queue_wait_s, 2),
                       d.clients, d.index),
    )
