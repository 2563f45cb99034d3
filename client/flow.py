"""The in-flight window: how many sent frames are still unanswered, sans-I/O.

The server is latest-frame-wins: a frame that arrives while the previous one still waits
replaces it, and the replaced frame is never answered. Counting answers against sends
would therefore leak one slot per superseded frame and stall the stream. Instead every
frame carries an increasing `seq`, and since the server's answers never go back in time
(docs/protocol.md), an answer for seq `s` settles every frame up to `s`: each one was
either answered or superseded. Unanswered = last sent seq - last settled seq.

An `error` about a frame settles the same way: the server reports frame failures after
the frame was taken from the mailbox, so every older frame was already answered or
superseded. (A parse error could in principle overtake an older frame still waiting;
settling it early only lets one extra frame go out, which the mailbox absorbs, whereas
settling too little would stall the window until the timeout.)

A frame can still be lost without a trace (a connection that dies mid-frame, a server
bug), so a frame unanswered for `timeout_s` is settled by the clock. No asyncio and no
sockets here: the caller passes `now`, which makes the logic unit-testable and reusable
by `perf/latency_probe.py`.

Pacing. When the server is the bottleneck, a window of K frames only makes each frame
wait for the K-1 before it (and for every other client's): latency grows with the number
of clients, as Little's law says. A paced server (the connection negotiated the
`facestream.pacing` subprotocol) says with each answer when it will be ready for this
client's next frame: `pace_ms` after the answered frame was sent. The window holds the
next frame back until then (to within `pace_slack_s`, half a camera frame, so the nearest
camera frame goes), and, until the next answer says otherwise, spaces every frame sent by
the last pace it was given. So when the server is the bottleneck frames leave one at a
time, just in time for their turn; when the network is, answers come back late, the pace
is short, and the window's second slot fills.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

from .config import ClientConfig


@dataclass
class InFlightWindow:
    """At most `limit` frames unanswered; seq numbers start at `first_seq` and only grow."""

    limit: int = 2
    timeout_s: float = 5.0
    first_seq: int = 1
    pace_slack_s: float = 0.0  # a paced frame may go this much before its time (half a camera frame)
    not_before: float = field(init=False, default=float("-inf"))  # the server's pacing: no frame before this
    pace_s: float | None = field(init=False, default=None)  # the latest pace the server asked for
    _last_sent_at: float = field(init=False, default=float("-inf"))
    last_sent: int = field(init=False)
    last_settled: int = field(init=False)
    max_in_flight: int = field(init=False, default=0)  # the highest `in_flight` ever seen
    timeouts: int = field(init=False, default=0)  # frames settled by the clock, not the server
    _sent_at: collections.deque[tuple[int, float]] = field(init=False, default_factory=collections.deque)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"in-flight limit must be at least 1, got {self.limit}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout_s}")
        self.last_sent = self.last_settled = self.first_seq - 1

    @property
    def in_flight(self) -> int:
        """Frames sent and not yet settled (answered, superseded, failed or timed out)."""
        return self.last_sent - self.last_settled

    def can_send(self, now: float) -> bool:
        """True when one more frame fits and the server's pacing allows it; expires frames
        older than the timeout first."""
        self.expire(now)
        return self.in_flight < self.limit and now >= self.not_before - self.pace_slack_s

    def next_chance(self, now: float) -> float | None:
        """When a frame held back now could go, unless an answer comes first: at once if it
        can, when the server's pace allows it, or (window full) when the oldest frame times out."""
        self.expire(now)
        if self.in_flight >= self.limit:
            return self._sent_at[0][1] + self.timeout_s if self._sent_at else None
        return max(now, self.not_before - self.pace_slack_s)

    def next_seq(self) -> int:
        """The seq the next frame will carry (call `sent` once it has gone out)."""
        return self.last_sent + 1

    def sent(self, now: float) -> int:
        """Record that frame `next_seq()` was sent at `now`; returns its seq."""
        self.last_sent += 1
        self._sent_at.append((self.last_sent, now))
        self._last_sent_at = now
        if self.pace_s is not None:
            self.not_before = now + self.pace_s
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self.last_sent

    def settle(self, seq: int | None, pace_s: float | None = None) -> bool:
        """An answer (or error) about `seq` arrived: every frame up to it is settled. A paced
        answer (`pace_s`) also says when the next frame may go: `pace_s` after `seq` was sent.

        Returns False for an answer that settles nothing new (a late one after a timeout,
        a seq we never sent, or no seq at all).
        """
        if seq is None or seq <= self.last_settled or seq > self.last_sent:
            return False
        if pace_s is not None:  # the answered frame's turn is taken: the next is one pace after the last sent
            self.pace_s = pace_s
            self.not_before = self._last_sent_at + pace_s
        self.last_settled = seq
        while self._sent_at and self._sent_at[0][0] <= seq:
            self._sent_at.popleft()
        return True

    def expire(self, now: float) -> int:
        """Settle frames unanswered for longer than `timeout_s`; returns how many."""
        expired = 0
        while self._sent_at and now - self._sent_at[0][1] >= self.timeout_s:
            seq, _ = self._sent_at.popleft()
            expired += seq - self.last_settled
            self.last_settled = seq
        self.timeouts += expired
        return expired

    def reset(self) -> None:
        """Forget every unanswered frame (the connection they went out on is gone).

        Seq numbers keep growing across reconnects, so an answer can never be mistaken
        for one about an older frame.
        """
        self.last_settled = self.last_sent
        self._sent_at.clear()
        self.not_before, self.pace_s = float("-inf"), None  # a new connection (maybe another server) paces afresh


def new_window(config: ClientConfig, fps: float) -> InFlightWindow:
    """The window a client streaming at `fps` (0: unpaced by a camera) uses on `config`'s connections."""
    return InFlightWindow(limit=config.in_flight, timeout_s=config.frame_timeout_s,
                          pace_slack_s=0.5 / fps if fps > 0 else 0.0)


def pace_s(pace_ms: int | None) -> float | None:
    """An answer's `pace_ms` in seconds (None: the server does not pace this connection)."""
    return None if pace_ms is None else pace_ms / 1000
