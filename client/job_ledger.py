"""The books of a video job, without I/O: which frames are out, which came back, what to write.

A job sends every frame of a file and writes every answer in order. At most `window` frames
are out at a time (the server queues what it is sent, so the window is the job's share of
its memory); answers may come back in any order and wait here until the frames before them
are written; a frame the server could not process is written as it was sent. When the
connection drops, the frames out and not answered are sent again on the next one, in order,
so a job resumes where it was rather than from the start.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SentFrame:
    seq: int
    jpeg: bytes
    pts: int
    time_s: float


@dataclass(frozen=True)
class Writable:
    """The next frame to write: the server's result, or (`result` None) the frame as it was sent."""

    frame: SentFrame
    result: bytes | None


@dataclass
class JobLedger:
    window: int
    out: dict[int, SentFrame] = field(default_factory=dict)  # sent, not yet written; in seq order
    _answers: dict[int, bytes | None] = field(default_factory=dict)
    next_to_write: int = 0
    written: int = 0
    unprocessed: int = 0  # written as sent: the server failed them
    _handed: int = 0  # handed out to be written, not written yet

    def can_send(self) -> bool:
        return len(self.out) < self.window

    def sent(self, frame: SentFrame) -> None:
        self.out[frame.seq] = frame

    def answered(self, seq: int | None, result: bytes | None) -> list[Writable]:
        """A result (None: an error naming the frame) came; the frames now writable, in order.
        Answers to frames not out (a duplicate after a resend) are ignored."""
        if seq is not None and seq in self.out and seq not in self._answers:
            self._answers[seq] = result
        ready = []
        while self.next_to_write in self._answers:
            seq = self.next_to_write
            result = self._answers.pop(seq)
            ready.append(Writable(self.out.pop(seq), result))
            self.next_to_write += 1
        self._handed += len(ready)
        return ready

    def wrote(self, item: Writable) -> None:
        """`item`, handed out by `answered`, is in the file."""
        self._handed -= 1
        self.written += 1
        self.unprocessed += item.result is None

    def to_resend(self) -> list[SentFrame]:
        """On a new connection: the frames out whose answers never came, in order."""
        return [frame for seq, frame in sorted(self.out.items()) if seq not in self._answers]

    @property
    def idle(self) -> bool:
        """Nothing out, nothing still to write."""
        return not self.out and not self._handed
