"""One piece of work (a batch, a photo being prepared) and what it cost, as the threads doing it see it.

The thread that runs a batch binds its `WorkAccount` (`working_on`); model calls made by
that thread take the account's priority and add their device time to it, and host work it
fans out adds its CPU time per stage. The scheduler reads the account while the batch
runs, to know how much device work is still to come.
"""
from __future__ import annotations

import collections
import contextlib
import threading
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class WorkAccount:
    priority: float  # when the work started: the device serves the oldest first
    device_s: float = 0.0  # holding the device
    wait_s: float = 0.0  # waiting for it
    blocked_s: float = 0.0  # waiting for a client's earlier frame (its analysis comes first)
    calls: int = 0
    running_since: float | None = None  # the call holding the device now, if one of ours
    host_before_last_call: float = 0.0  # seconds of host work between the start and the latest call
    processed_at: float | None = None  # time.monotonic() when its processors were done (only encoding left)
    host_cpu_s: collections.Counter[str] = field(default_factory=collections.Counter)  # per host stage
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call_started(self, start: float, asked: float) -> None:
        """One of our calls got the device at `start` (it asked at `asked`)."""
        self.wait_s += start - asked
        self.host_before_last_call = start - self.priority - self.device_s - self.wait_s - self.blocked_s
        self.running_since = start

    def call_ended(self, end: float) -> None:
        assert self.running_since is not None
        self.device_s += end - self.running_since
        self.running_since = None
        self.calls += 1

    def device_s_at(self, now: float) -> float:
        """Device time used so far, the call running now included."""
        running = self.running_since
        return self.device_s + (now - running if running is not None else 0.0)

    def add_host(self, stage: str, cpu_s: float) -> None:
        """Host time of one stage (called from the pool's threads as their tasks end)."""
        with self._lock:
            self.host_cpu_s[stage] += cpu_s


_local = threading.local()


@contextlib.contextmanager
def working_on(account: WorkAccount) -> Iterator[WorkAccount]:
    """Model calls and host stages of this thread inside the block belong to `account`."""
    previous = getattr(_local, "account", None)
    _local.account = account
    try:
        yield account
    finally:
        _local.account = previous


def current() -> WorkAccount | None:
    """The account this thread works for, if any."""
    return getattr(_local, "account", None)
