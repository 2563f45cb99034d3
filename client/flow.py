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
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class InFlightWindow:
    """At most `limit` frames unanswered; seq numbers start at `first_seq` and only grow."""

    limit: int = 2
    timeout_s: float = 5.0
    first_seq: int = 1
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
        """True when one more frame fits; expires frames older than the timeout first."""
        self.expire(now)
        return self.in_flight < self.limit

    def next_seq(self) -> int:
        """The seq the next frame will carry (call `sent` once it has gone out)."""
        return self.last_sent + 1

    def sent(self, now: float) -> int:
        """Record that frame `next_seq()` was sent at `now`; returns its seq."""
        self.last_sent += 1
        self._sent_at.append((self.last_sent, now))
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self.last_sent

    def settle(self, seq: int | None) -> bool:
        """An answer (or error) about `seq` arrived: every frame up to it is settled.

        Returns False for an answer that settles nothing new (a late one after a timeout,
        a seq we never sent, or no seq at all).
        """
        if seq is None or seq <= self.last_settled or seq > self.last_sent:
            return False
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
