"""What the client counts while it streams, and the one-line summary it prints at exit.

Kept free of I/O so the overlay, the summary and the tests read the same numbers.
Latency is the round trip measured from the frame's own timestamp, which the server
echoes: `now - echoed timestamp`, in the client's clock only, so no clock sync is needed.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

LATENCY_WINDOW = 4096  # recent round trips kept for percentiles (a few minutes at 30 fps)
FPS_WINDOW_S = 1.0  # the overlay's fps is over the last second


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class StreamStats:
    sent: int = 0
    received: int = 0
    skipped: int = 0  # source frames dropped because the in-flight window was full
    errors: int = 0  # `error` messages from the server
    reconnects: int = 0
    started_at: float | None = None  # monotonic time of the first frame sent
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    _arrivals: collections.deque[float] = field(default_factory=collections.deque)

    def frame_sent(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
        self.sent += 1

    def frame_received(self, now: float, latency_s: float | None) -> None:
        """Count one processed frame; `latency_s` is None when the echo is not ours to time."""
        self.received += 1
        if latency_s is not None and latency_s >= 0:
            self.latencies.append(latency_s)
        self._arrivals.append(now)
        while self._arrivals and now - self._arrivals[0] > FPS_WINDOW_S:
            self._arrivals.popleft()

    def recent_fps(self, now: float) -> float:
        """Processed frames per second over the last second (what the overlay shows)."""
        recent = [t for t in self._arrivals if now - t <= FPS_WINDOW_S]
        return len(recent) / FPS_WINDOW_S

    def average_fps(self, now: float) -> float:
        """Processed frames per second since the first frame was sent."""
        if self.started_at is None or now <= self.started_at:
            return 0.0
        return self.received / (now - self.started_at)

    def latency_ms(self, q: float) -> float:
        return percentile(list(self.latencies), q) * 1000

    def last_latency_ms(self) -> float:
        return self.latencies[-1] * 1000 if self.latencies else math.nan

    def summary(self, now: float, max_in_flight: int, in_flight_limit: int) -> str:
        """The one line printed at exit."""
        return (
            f"frames sent {self.sent}, received {self.received}, skipped {self.skipped}; "
            f"{self.average_fps(now):.1f} fps received; "
            f"latency p50 {self.latency_ms(50):.1f} ms, p95 {self.latency_ms(95):.1f} ms; "
            f"max in flight {max_in_flight}/{in_flight_limit}; "
            f"errors {self.errors}, reconnects {self.reconnects}"
        )
