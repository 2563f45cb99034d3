"""The probe's progress line on stderr, refreshed each second: phase, elapsed time, fps, p50 so far.

On a terminal it rewrites one line in place; into a file or a pipe it appends one line per
second, which reads well in a CI log. It only ever sees round trips (fed by the clients,
or by the worker processes through a queue), never the clients themselves.
"""
from __future__ import annotations

import asyncio
import math
import sys
import time
from typing import TextIO

from client.stats import percentile

TICK_S = 1.0


class Progress:
    def __init__(self, title: str, stream: TextIO | None = None) -> None:
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        self.label = "connecting"
        self._started = time.perf_counter()
        self._latencies: list[float] = []
        self._last_tick = (self._started, 0)
        self._task: asyncio.Task[None] | None = None
        self._in_place = self.stream.isatty()

    def record(self, label: str, latency_s: float) -> None:
        """One answer (an `AnswerHook`); answers to another phase's frames are ignored."""
        if label == self.label:
            self._latencies.append(latency_s)

    def begin(self, label: str) -> None:
        """A new phase: elapsed time, fps and p50 start again from zero."""
        self.label = label
        self._started = time.perf_counter()
        self._latencies = []
        self._last_tick = (self._started, 0)

    def line(self) -> str:
        now = time.perf_counter()
        then, count_then = self._last_tick
        count = len(self._latencies)
        fps = (count - count_then) / (now - then) if now > then else 0.0
        self._last_tick = (now, count)
        p50 = percentile(self._latencies, 50) * 1000
        p50_text = f"{p50:.1f} ms" if not math.isnan(p50) else "-"
        return f"{self.title}: {self.label} {now - self._started:5.1f} s, {fps:7.1f} fps, p50 {p50_text}"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._write(self.line())

    def _write(self, text: str) -> None:
        if self._in_place:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="probe-progress")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._in_place:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
