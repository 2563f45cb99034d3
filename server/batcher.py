"""Cross-client batching on one device: the asyncio shell around the `Scheduler`.

It asks the scheduler what to do whenever that may have changed (a mailbox filled, a batch
returned, the time it named came), takes the frames it names, and runs each batch in a
worker thread. Several batches may be in flight: only their model calls take turns on the
device (`models.device`), so one batch's host work (decode, crops, paste-back, encode)
overlaps another's models.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Hashable, Protocol

from models.device import ModelDevice
from models.work import WorkAccount

from .errors import server_fault
from .pipeline import BatchItem, Pipeline
from .scheduler import Scheduler, Take
from .stats import ServerStats

log = logging.getLogger(__name__)


class Mailbox(Hashable, Protocol):
    """A client as the batcher sees it: a mailbox to take from, and a place for the result."""

    transport: str  # "websocket" or "webrtc": batches are counted by the transports they mix

    def take(self, now: float) -> tuple[object, BatchItem]: ...

    def complete(self, job: object, work: BatchItem) -> None: ...


class Batcher:
    def __init__(self, pipeline: Pipeline, stats: ServerStats, executor: Executor, scheduler: Scheduler) -> None:
        self._pipeline = pipeline
        self._stats = stats
        self._executor = executor
        self.scheduler = scheduler
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def mark_ready(self, mailbox: Mailbox, at: float, queued: bool = False) -> None:
        self.scheduler.mark_ready(mailbox, at, queued)
        self._wakeup.set()

    def forget(self, mailbox: Mailbox) -> None:
        self.scheduler.forget(mailbox)

    def start(self, device: ModelDevice) -> None:
        """Start deciding; every model call that ends on `device` is a moment to decide again."""
        loop = asyncio.get_running_loop()
        device.on_call_end = lambda: loop.call_soon_threadsafe(self._wakeup.set)
        self._task = asyncio.create_task(self._loop(), name="batcher")

    async def stop(self) -> None:
        """Stop taking frames and let the batches already running finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            now = time.monotonic()
            decision = self.scheduler.plan(now)
            if isinstance(decision, Take):
                self._start(decision.clients, now)
                continue
            timeout = None if decision.until is None else max(0.0, decision.until - now)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _start(self, mailboxes: list[Mailbox], now: float) -> None:
        batch = [(mailbox, *mailbox.take(now)) for mailbox in mailboxes]
        account = WorkAccount(priority=now)
        ages = [now - work.received_at for _, _, work in batch]
        batch_id = self.scheduler.started(len(batch), now, ages, account)
        task = asyncio.create_task(self._run(batch_id, batch, account))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch_id: int, batch: list[tuple[Mailbox, object, BatchItem]], account: WorkAccount) -> None:
        works = [work for _, _, work in batch]
        try:
            loop = asyncio.get_running_loop()
            wake = lambda: loop.call_soon_threadsafe(self._wakeup.set)  # noqa: E731 - the next batch may start
            timings = await loop.run_in_executor(self._executor, self._pipeline.run, works, account, wake)
            self._stats.record_batch(len(batch), timings, {mailbox.transport for mailbox, _, _ in batch},
                                     clients=len({mailbox for mailbox, _, _ in batch}))
        except Exception:  # the pipeline isolates frame failures; this is a bug, fail the batch loudly
            log.exception("batch of %d frames crashed", len(batch))
            for work in works:
                if work.result is None and work.error is None:
                    work.error = server_fault("frame", work.seq)
        finally:
            self.scheduler.finished(batch_id, time.monotonic())
            self._wakeup.set()
        for mailbox, job, work in batch:
            mailbox.complete(job, work)
