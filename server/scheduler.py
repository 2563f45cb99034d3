"""When to take the next batch, how many frames it holds, and when paced clients should send.

No asyncio: the caller passes `now`. Three rules keep latency bounded as clients grow.

**Take late.** A batch's frames are taken from the mailboxes when the device is about to be
free for them, not when a worker is: while frames wait in their mailboxes, newer ones
replace them; once taken, they only age. "About to be free" is measured, not guessed:
every batch in flight is expected to need `batch_device(n)` seconds of model calls and has
used some already (its `WorkAccount`); the rest, summed over the batches in flight, is the
device's backlog. A new batch does `lead(n)` seconds of host work (decode, letterbox, NMS,
crops) before its last model call, the one that matters for the device, so it is taken
when the backlog is down to that (plus one frame's worth kept queued): it reaches the
device as it frees, and the device does not idle while frames wait in mailboxes. When
the device is the CPU itself there is no separate device to keep busy: the cores run the
models and the host work alike, and overlapping batches only makes each slower, so one
batch is processed at a time; the next is taken (and decoded) while the last one encodes.

**Size batches to a latency target.** From recent batches the scheduler knows how long a
batch of n frames takes from take to results, and how much device time it needs, each
fitted as fixed + per_frame x n (`models.costs.LinearCost`). The target bounds the size:
no more frames than are predicted to finish within it. Within that bound it takes the
fewest frames that get within `KNEE` of the best throughput: on a CPU, where a batch of n
costs about n single frames, that is one; on a GPU, where a call's fixed cost dominates,
as many as the target allows. Clients the batch cannot take keep their place: the oldest
waiting go first.

**Live clients first.** A job (a video file) queues its frames rather than replacing them:
each is one more to take. A batch takes the live clients' frames first and fills what they
leave with a job's, in order, several a batch where the device gains from them. While live
clients stream, a job may make no batch more than `JOB_SLACK` slower than the live frames
alone would take (or than one frame, for a batch of the job's only), and a batch of the
job's only starts only when no other batch is in flight, and not when a live frame is due
before it would end: so what a live frame waits for, the batch it is in or the one before
it, and the host cores its batch shares, stay about as they would without a job. With no
live client streaming the latency target does not bound a job's batches: it is the live
clients' promise, and a job's frames are waited for as a whole file, so its batches are
sized for throughput alone (a live client that then joins waits once behind the batches in
flight, and the rules above take over from its first frame).

**Pace the clients that ask.** A client's turn comes once per `active clients x service
time per frame`; a paced client (docs/protocol.md, "Pacing") is told to send its next
frame just before then, so its frames do not wait behind everyone else's.
"""
from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass, field
from typing import Generic, Hashable, TypeVar

import numpy as np

from models.costs import MIN_OTHERS, LinearCost
from models.work import WorkAccount

M = TypeVar("M", bound=Hashable)
RATE_WINDOW_S = 5.0  # frames/s in the stats
ACTIVE_WINDOW_S = 2.0  # a client that offered a frame this recently shares the device's turns
PROBE_EVERY = 4  # batches between tries of a size the fit has not seen
KNEE = 0.1  # a batch grows only while that buys more than this share of throughput
JOB_SLACK = 0.25  # while live clients stream, a job's frames may make a batch this much slower, no more
LIVE_GRACE_S = 0.015  # a live frame this late is no longer waited for (see `_live_frame_due`)
TAKE_TOLERANCE_S = 0.0005  # closer than this to its time, a batch is taken now (the loop is no finer)


@dataclass(frozen=True)
class Take(Generic[M]):
    """Take the frames of these clients now, as one batch (oldest waiting first)."""

    clients: list[M]


@dataclass(frozen=True)
class Wait:
    """Nothing to take before `until` (None: until a frame arrives or a batch returns)."""

    until: float | None


@dataclass
class _InFlight:
    frames: int
    taken_at: float
    account: WorkAccount
    device_s_expected: float


@dataclass
class Scheduler(Generic[M]):
    max_batch: int
    latency_target_s: float
    max_in_flight: int = 4
    device_is_host: bool = False  # the models run on the CPU cores that do the host work: one batch at a time
    queue_ahead: float = 1.0  # frames of device work kept queued on a separate device
    ready: dict[M, float] = field(default_factory=dict)  # client -> when its frame may be taken; insertion order
    queued: collections.Counter[M] = field(default_factory=collections.Counter)  # a job's frames waiting
    _jobs: set[M] = field(default_factory=set)  # clients that queue (they take no live turns)
    _live_gaps: dict[M, float] = field(default_factory=dict)  # live client -> its usual time between frames
    batch_time: LinearCost = field(default_factory=LinearCost)  # take -> results, by frames
    batch_device: LinearCost = field(default_factory=LinearCost)  # device seconds of a batch, by frames
    batch_busy: LinearCost = field(default_factory=LinearCost)  # take -> processors done: what holds a CPU device
    lead: LinearCost = field(default_factory=LinearCost)  # host seconds before a batch's last model call
    last_batch_size: int = 0
    queue_wait_s: float = 0.0  # exponentially weighted: how long taken frames had waited in their mailboxes
    _in_flight: dict[int, _InFlight] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)
    _taken: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)  # (time, frames)
    _since_probe: int = 0
    _last_ready: dict[M, float] = field(default_factory=dict)  # when each client last offered a frame
    _freed_at: float | None = None  # when the last finished batch's processing was done
    _recent_times: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=256))
    slot_gap_s: float = 0.0  # CPU device: from a batch's processing done to the next batch's take, frames waiting

    # ---- mailboxes --------------------------------------------------------------------
    def mark_ready(self, client: M, at: float, queued: bool = False) -> None:
        """`client`'s mailbox holds a frame that may be taken from `at` on; `queued`: one more
        frame of a job, whose frames wait behind each other rather than replace each other."""
        if not queued and client in self._last_ready and 0 < at - self._last_ready[client] < ACTIVE_WINDOW_S:
            gap = at - self._last_ready[client]
            self._live_gaps[client] = gap if client not in self._live_gaps else 0.7 * self._live_gaps[client] + 0.3 * gap
        self._last_ready[client] = at
        if queued:
            self.queued[client] += 1
            self._jobs.add(client)
        if client not in self.ready:
            self.ready[client] = at

    def forget(self, client: M) -> None:
        self.ready.pop(client, None)
        self.queued.pop(client, None)
        self._jobs.discard(client)
        self._live_gaps.pop(client, None)
        self._last_ready.pop(client, None)

    # ---- decisions ----------------------------------------------------------------------
    def plan(self, now: float) -> Take[M] | Wait:
        clients = [client for client, at in self.ready.items() if at <= now]
        live = [client for client in clients if client not in self.queued]
        eligible = live + [client for client in clients if client in self.queued  # live first, then jobs' frames
                           for _ in range(self.queued[client])]
        if not eligible:
            return Wait(min(self.ready.values(), default=None))
        if len(self._in_flight) >= self.max_in_flight or (
                self.device_is_host and any(batch.account.processed_at is None for batch in self._in_flight.values())):
            return Wait(None)
        freed = max((batch.account.processed_at for batch in self._in_flight.values()
                     if batch.account.processed_at is not None), default=self._freed_at)
        live_streaming = self._live_streaming(now)
        target = self.latency_target_s if live or live_streaming else math.inf
        size = self.batch_size(len(eligible), target)
        if len(live) < len(eligible) and live_streaming:
            if not live and self._in_flight:
                return Wait(None)  # a job's own batch waits until the host has nothing else to do
            due = self._live_frame_due(now) if not live else None
            if due is not None:
                return Wait(due + LIVE_GRACE_S)
            size = min(size, self._room_beside_live(len(live)))
        early = self.device_backlog_s(now) - self.lead_s(size)
        if early > TAKE_TOLERANCE_S:
            return Wait(now + early)
        chosen = eligible[:self._probe(size, len(eligible), target)]
        if self.device_is_host and freed is not None and self.ready[chosen[0]] <= freed:
            self.slot_gap_s += 0.1 * (now - freed - self.slot_gap_s)  # the slot sat free while frames waited
        for client in chosen:
            self._took_one(client)
        return Take(chosen)

    def _took_one(self, client: M) -> None:
        if client in self.queued:
            self.queued[client] -= 1
            if self.queued[client] > 0:
                return  # more of the job's frames wait, in their place
            del self.queued[client]
        del self.ready[client]

    def _live_streaming(self, now: float) -> bool:
        return any(at >= now - ACTIVE_WINDOW_S and client not in self._jobs for client, at in self._last_ready.items())

    def _live_frame_due(self, now: float) -> float | None:
        """A job's frame taken now holds host cores until its batch ends: on the CPU all of
        them (a live frame due meanwhile waits for all of it), beside a separate device the
        host pool's, which the live frame's own decode, crops and encode would share. When
        the next live frame is due within one frame's batch (each live client's usual
        spacing after its last), and not already later than `LIVE_GRACE_S`, the job waits."""
        span = self._busy_cost if self.device_is_host else self.batch_time
        if not span.known:
            return None
        horizon = now + span.predict(1)
        due = [self._last_ready[client] + gap for client, gap in self._live_gaps.items()]
        return min((at for at in due if now - LIVE_GRACE_S < at <= horizon), default=None)

    def _room_beside_live(self, live: int) -> int:
        """The most frames a batch with `live` live frames may hold once a job's fill it:
        within `JOB_SLACK` of the time the live frames alone (at least one frame) would take."""
        alone = max(1, live)
        if not self.batch_time.known:
            return alone
        limit = (1 + JOB_SLACK) * self.batch_time.predict(alone)
        size = alone
        while size < self.max_batch and self.batch_time.predict(size + 1) <= limit:
            size += 1
        return size

    def device_backlog_s(self, now: float) -> float:
        """Model time the batches in flight are still expected to need, less one frame's worth
        kept queued (`queue_ahead`) so the device does not idle between batches."""
        backlog = sum(max(0.0, batch.device_s_expected - batch.account.device_s_at(now))
                      for batch in self._in_flight.values())
        ahead = self.queue_ahead * self.batch_device.predict(1) if self.batch_device.known else 0.0
        return backlog - ahead

    def lead_s(self, size: int) -> float:
        """Host time a batch of `size` spends before its last model call."""
        return self.lead.predict(size) if self.lead.known else 0.0

    def batch_size(self, available: int, target_s: float | None = None) -> int:
        """The smallest batch within `KNEE` of the best throughput `target_s` (by default the
        latency target) allows.

        The most frames whose batch is predicted to finish within the target bound the size;
        within that, a frame more is only worth its wait if it buys throughput. Where a batch
        of n costs about n single frames (a CPU) that means one frame; where a call's fixed
        cost dominates (a GPU) it means as many as the target allows."""
        limit = min(available, self.max_batch) if self.batch_time.known else 1  # learn from single frames first
        throughput = self._throughputs(limit, self.latency_target_s if target_s is None else target_s)
        best = max(throughput)
        return next(size for size, rate in enumerate(throughput, 1) if rate >= (1.0 - KNEE) * best)

    def _throughputs(self, limit: int, target_s: float) -> list[float]:
        """Frames per second of the device for batches of 1, 2, ... up to `limit` frames or the
        most the target allows: frames per second of device time, or, on the CPU (one batch
        processed at a time), per second of a batch's processing."""
        allowed = 1
        while allowed < limit and self.batch_time.predict(allowed + 1) <= target_s:
            allowed += 1
        gap = self.slot_gap_s if self.device_is_host else 0.0
        return [size / max(self._busy_cost.predict(size) + gap, 1e-9) for size in range(1, allowed + 1)]

    @property
    def _busy_cost(self) -> LinearCost:
        """What a batch holds the device for: its model time, or on the CPU its processing."""
        return self.batch_busy if self.device_is_host else self.batch_device

    def _probe(self, size: int, available: int, target_s: float) -> int:
        """`size`, or one frame more once in `PROBE_EVERY` batches.

        A fit that has only seen one size cannot tell a fixed cost from a per-frame one, and
        charges it all per frame. So while the size it allows is within the target, more
        frames are ready and the fit has seen too few bigger batches, a batch now and then
        tries one frame more (Clipper's additive increase); their times teach the fit what a
        bigger batch really costs."""
        self._since_probe += 1
        if (size < min(available, self.max_batch) and self._since_probe >= PROBE_EVERY
                and self.batch_time.seen(size + 1) < MIN_OTHERS and self.batch_time.predict(size) <= target_s):
            self._since_probe = 0
            return size + 1
        return size

    # ---- pacing -------------------------------------------------------------------------
    def pace_s(self, now: float, received_at: float, taken_at: float) -> float:
        """How long after sending a frame (that arrived at `received_at` and was taken at
        `taken_at`) its client should send the next: when its next turn comes.

        A client's turn comes every `active clients x service time per frame`: its fair share
        of what the device can do, from the measured costs, not from what the clients happen
        to send (which pacing itself sets). When a turn is shorter than a camera frame the pace
        asks nothing a client would not do anyway."""
        active = sum(1 for client, at in self._last_ready.items()
                     if at >= now - ACTIVE_WINDOW_S and client not in self._jobs)  # jobs use what is left
        turn = max(1, active) * self.service_s()
        return max(0.0, (taken_at - received_at) + turn)

    def service_s(self) -> float:
        """Seconds of the device per frame at its best batch size within the target: what it
        can do when frames are waiting. Zero before any batch has been measured."""
        return 1.0 / max(self._throughputs(self.max_batch, self.latency_target_s)) if self._busy_cost.known else 0.0

    # ---- batches ------------------------------------------------------------------------
    def started(self, frames: int, now: float, ages_s: list[float], account: WorkAccount) -> int:
        """A batch of `frames` was taken at `now` (its frames had waited `ages_s`); returns its id."""
        batch_id = next(self._ids)
        expected = self.batch_device.predict(frames) if self.batch_device.known else 0.0
        self._in_flight[batch_id] = _InFlight(frames, now, account, expected)
        self.last_batch_size = frames
        for age in ages_s:
            self.queue_wait_s += 0.1 * (age - self.queue_wait_s)
        self._taken.append((now, frames))
        self._forget_before(now - RATE_WINDOW_S)
        return batch_id

    def finished(self, batch_id: int, now: float) -> None:
        """The batch's results are in: learn what it cost."""
        batch = self._in_flight.pop(batch_id)
        if batch.account.processed_at is not None:
            self._freed_at = max(self._freed_at or 0.0, batch.account.processed_at)
        self.batch_time.add(batch.frames, now - batch.taken_at)
        self._recent_times.append(now - batch.taken_at)
        self.batch_device.add(batch.frames, batch.account.device_s)
        if batch.account.processed_at is not None:
            self.batch_busy.add(batch.frames, batch.account.processed_at - batch.taken_at)
        if batch.account.calls:
            self.lead.add(batch.frames, batch.account.host_before_last_call)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _forget_before(self, start: float) -> None:
        while self._taken and self._taken[0][0] < start:
            self._taken.popleft()

    def frames_per_s(self, now: float) -> float:
        self._forget_before(now - RATE_WINDOW_S)
        return sum(frames for _, frames in self._taken) / RATE_WINDOW_S

    def as_dict(self, now: float) -> dict[str, object]:
        """What the stats report of the scheduling: the size chosen and the costs it was chosen from."""
        service = self.service_s()
        return {
            "batch_size": self.last_batch_size,
            "capacity_fps": round(1.0 / service, 1) if service > 0 else None,
            "latency_target_ms": round(self.latency_target_s * 1000, 1),
            "batches_in_flight": self.in_flight,
            "frames_per_s": round(self.frames_per_s(now), 2),
            "queue_wait_avg": round(self.queue_wait_s, 5),
            "slot_gap_ms": round(self.slot_gap_s * 1000, 3),
            "batch_time_p95_ms": round(1000 * float(np.percentile(self._recent_times, 95)), 2) if self._recent_times else None,
            "batch_time": self.batch_time.as_dict(),
            "batch_device_time": self.batch_device.as_dict(),
            "batch_busy_time": self.batch_busy.as_dict(),
            "lead_time": self.lead.as_dict(),
        }
