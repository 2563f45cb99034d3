"""What work costs, learned online: seconds ≈ fixed + per_item × items, from recent samples.

The scheduler sizes batches from these fits, so they must be honest on both kinds of
device: on a CPU a model call costs about `per_item` per item and `fixed` is small, so
batching buys little; on a GPU `fixed` (launch floors, an idle chip at small batches)
dominates and batching is what fills the device. A window of recent samples, refitted by
least squares, follows a device whose speed drifts (a shared machine, thermal limits)
without the lag of a long average.

When every recent sample has the same item count, fixed and per-item cannot be told
apart; the fit then charges everything per item, which never promises more from a bigger
batch than was measured. Varying face counts and batch sizes soon separate the two.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

WINDOW = 64  # recent samples per fit: a few seconds of batches
MIN_OTHERS = 3  # samples at item counts other than the commonest before fixed and per-item separate


@dataclass
class LinearCost:
    """An online fit of seconds against items (frames, faces) for one kind of work."""

    window: int = WINDOW
    samples: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    _fit: tuple[float, float] | None = field(default=None, repr=False)

    def add(self, items: float, seconds: float) -> None:
        self.samples.append((float(items), float(seconds)))
        while len(self.samples) > self.window:
            self.samples.popleft()
        self._fit = None

    @property
    def known(self) -> bool:
        return bool(self.samples)

    def seen(self, items: float) -> int:
        """How many recent samples had at least this many items."""
        return sum(1 for x, _ in self.samples if x >= items)

    def fit(self) -> tuple[float, float]:
        """(fixed seconds, seconds per item), both ≥ 0; (0, 0) before any sample."""
        if self._fit is None:
            self._fit = _least_squares(self.samples)
        return self._fit

    def predict(self, items: float) -> float:
        fixed, per_item = self.fit()
        return fixed + per_item * items

    def as_dict(self) -> dict[str, float]:
        fixed, per_item = self.fit()
        return {"fixed_ms": round(fixed * 1000, 3), "per_item_ms": round(per_item * 1000, 3),
                "samples": len(self.samples)}


def _least_squares(samples: collections.deque[tuple[float, float]]) -> tuple[float, float]:
    if not samples:
        return 0.0, 0.0
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var_x = sum((x - mean_x) ** 2 for x, _ in samples) / n
    commonest = collections.Counter(x for x, _ in samples).most_common(1)[0][1]
    if n - commonest < MIN_OTHERS or var_x <= 0:
        return 0.0, (mean_y / mean_x if mean_x > 0 else 0.0)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in samples) / (n * var_x)
    if slope <= 0:  # noise swamped a flat cost: it is all fixed
        return mean_y, 0.0
    fixed = mean_y - slope * mean_x
    if fixed < 0:  # a line through the origin fits better than a negative floor
        return 0.0, sum(x * y for x, y in samples) / sum(x * x for x, _ in samples)
    return fixed, slope
