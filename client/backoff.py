"""Reconnect delays (exponential, capped, with jitter), sans-I/O; `reconnect` decides when to use them.

Exponential so a server that is down for a while is not hammered; capped so the client
comes back within seconds once it is up again; jittered so that many clients dropped by
one server restart do not all knock again in the same instant.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """`next_delay()` grows from `initial_s` by `factor` up to `max_s`; `reset()` after a success.

    The jitter is "equal jitter": half of the delay is kept, the other half is random, so
    a delay never collapses to zero (which full jitter allows) and stays within
    [delay / 2, delay].
    """

    initial_s: float = 0.5
    max_s: float = 10.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {self.initial_s} and {self.max_s}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter for the `attempt`-th retry (0-based)."""
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failed attempt."""
        ceiling = self.ceiling(self.attempts)
        self.attempts += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0
