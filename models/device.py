"""One inference device: model calls run one at a time, the oldest work first, and are measured.

Only model calls hold the device. Everything around them (decode, crops, NMS, tracking,
paste-back, encode) runs on host threads, so while one batch's swapper runs, the next
batch is decoded and the previous one pasted back. Sessions are wrapped (`DeviceSession`)
so the processors' code calls `session.run` as before and never sees the queue.

Order: each piece of work (a batch, a source photo being prepared) has a priority, the
time it was started; when the device frees, the waiting call with the oldest priority
runs. So a batch already half-way through finishes before a newer one overtakes it, and
photos being prepared cannot be starved by a stream of batches.

What the device did is kept for the scheduler and the stats: per model step, a fit of
seconds against the items of a call (`costs.LinearCost`); per piece of work, the seconds
it held the device and waited for it (`work.WorkAccount`); overall, the busy intervals of the
last few seconds.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import threading
import time
from typing import Any, Callable, TypeVar

from . import work
from .costs import LinearCost

T = TypeVar("T")
BUSY_WINDOW_S = 5.0


class ModelDevice:
    """Runs model calls one at a time in priority order; thread-safe."""

    def __init__(self, name: str = "device 0", clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self.on_call_end: Callable[[], None] = lambda: None  # e.g. wake a scheduler (called from the worker thread)
        self._condition = threading.Condition()
        self._busy = False
        self._waiting: list[tuple[float, int, object]] = []  # heap of (priority, arrival, ticket)
        self._arrivals = itertools.count()
        self._intervals: collections.deque[tuple[float, float]] = collections.deque()  # (start, end) of calls
        self.costs: dict[str, LinearCost] = collections.defaultdict(LinearCost)  # per model step
        self.sessions: list[Any] = []  # what runs the calls (ONNX Runtime sessions or simulated ones)
        self.busy_s_total = 0.0
        self.calls_total = 0

    def run(self, step: str, items: int, call: Callable[[], T]) -> T:
        """Run `call` (one model call over `items` items) when the device is ours."""
        account = work.current()
        asked = self._clock()
        priority = account.priority if account is not None else asked
        ticket = object()
        with self._condition:
            heapq.heappush(self._waiting, (priority, next(self._arrivals), ticket))
            while self._busy or self._waiting[0][2] is not ticket:
                self._condition.wait()
            heapq.heappop(self._waiting)
            self._busy = True
        start = self._clock()
        if account is not None:
            account.call_started(start, asked)
        try:
            return call()
        finally:
            end = self._clock()
            if account is not None:
                account.call_ended(end)
            with self._condition:
                self._busy = False
                self._record(step, items, start, end)
                self._condition.notify_all()
            self.on_call_end()

    def _record(self, step: str, items: int, start: float, end: float) -> None:
        self.costs[step].add(items, end - start)
        self.busy_s_total += end - start
        self.calls_total += 1
        self._intervals.append((start, end))
        self._forget_before(end - BUSY_WINDOW_S)

    def _forget_before(self, start: float) -> None:
        while self._intervals and self._intervals[0][1] < start:
            self._intervals.popleft()

    def busy_fraction(self, window_s: float = BUSY_WINDOW_S) -> float:
        """The share of the last `window_s` seconds the device spent running model calls."""
        now = self._clock()
        start = now - window_s
        with self._condition:
            self._forget_before(start)
            busy = sum(min(end, now) - max(begin, start) for begin, end in self._intervals if end > start)
        return min(1.0, busy / window_s)

    @property
    def replay_misses(self) -> int:
        """Simulated models' inputs the real model had to compute (0 on a real device)."""
        return sum(getattr(session, "misses", 0) for session in self.sessions)

    def cost_table(self) -> dict[str, dict[str, float]]:
        with self._condition:
            return {step: cost.as_dict() for step, cost in sorted(self.costs.items())}


class DeviceSession:
    """An ONNX Runtime session (or a stand-in with the same `run`) whose calls queue for `device`."""

    def __init__(self, session: Any, device: ModelDevice, step: str) -> None:
        self.session = session
        self.device = device
        self.step = step
        if session not in device.sessions:
            device.sessions.append(session)

    def run(self, output_names: Any, feeds: dict[str, Any], *args: Any) -> Any:
        items = len(next(iter(feeds.values()))) if feeds else 1
        return self.device.run(self.step, items, lambda: self.session.run(output_names, feeds, *args))

    def __getattr__(self, name: str) -> Any:  # get_inputs, get_outputs, get_providers, ...
        return getattr(self.session, name)
