"""A processor that lets a test decide what a batch holds, without timing anything.

A real server takes a frame as soon as the device can have it, so whether two clients'
frames meet in one batch depends on how fast the machine is. `Gate` holds every batch in
its processor until the test opens it: frames sent meanwhile wait in their mailboxes (one
batch at a time), and the scheduler decides what the next batch takes from a state the test
has set up. The `gate` fixture (tests/server/conftest.py) makes one; a server runs it as
`--frame-processor gate` when started with `processors=gate.registry`.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Mapping, Sequence

import numpy as np

from models.choice import PROCESSORS, ProcessorFactory
from models.frame import FrameContext, Passthrough
from models.hub import ModelSettings

TIMEOUT_S = 20.0  # a test that never opens the gate fails rather than hangs

# With `Gate`: a device where batching pays (on the CPU the scheduler takes one frame a batch,
# since a batch of n costs n frames there), one batch in flight, and a latency target out of
# the way, so the batch after a held one takes every frame waiting, up to `max_batch`.
GATHERING = {"models": ModelSettings(provider="simulated"), "batches_in_flight": 1, "latency_target_ms": 60_000.0}


class Gate(Passthrough):
    """Passthrough that holds each batch while the gate is shut, and notes each batch's clients."""

    name = "gate"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []  # the client ids of each call, in the order called
        self._entered = threading.Event()
        self._open = threading.Event()

    @property
    def registry(self) -> Mapping[str, ProcessorFactory]:
        """The server's processors and this gate, for `start_server(processors=...)`."""
        return {**PROCESSORS, self.name: lambda hub: self}

    def process(self, frames: Sequence[np.ndarray], contexts: Sequence[FrameContext]) -> list[np.ndarray]:
        self.batches.append([context.client_id for context in contexts])
        self._entered.set()
        if not self._open.wait(TIMEOUT_S):
            raise TimeoutError("the test never opened the gate")
        return list(frames)

    async def holding(self) -> None:
        """Return once a batch is held here: it was taken, so frames sent now wait for a later one."""
        if not await asyncio.to_thread(self._entered.wait, TIMEOUT_S):
            raise TimeoutError("no batch reached the gate")

    def open(self) -> None:
        """Let the held batch and every later one through."""
        self._open.set()
