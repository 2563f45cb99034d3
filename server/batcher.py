"""Cross-client batching: one batcher per inference device.

It wakes when any client's mailbox fills, takes the newest frame of every ready client
(oldest-waiting client first, up to `max_batch`), and runs the batch in a worker thread.
Up to `batches_in_flight` batches run at once, so batch k+1 is gathered and decoded while
batch k holds the device; there is no artificial wait to fill a batch, so a lone client
pays no batching latency and a saturated device gets full batches.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

from protocol import ErrorCode, ProtocolError

from .devices import DeviceLoad
from .pipeline import FrameWork, Pipeline
from .session import ClientSession, FrameJob
from .stats import ServerStats

log = logging.getLogger(__name__)


class Batcher:
    def __init__(
        self,
        pipeline: Pipeline,
        stats: ServerStats,
        executor: Executor,
        max_batch: int,
        batches_in_flight: int,
        load: DeviceLoad,
    ) -> None:
        self._pipeline = pipeline
        self._load = load
        self._stats = stats
        self._executor = executor
        self._max_batch = max_batch
        self._ready: dict[ClientSession, None] = {}  # insertion-ordered set: fairness
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(batches_in_flight)
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def mark_ready(self, session: ClientSession) -> None:
        self._ready[session] = None
        self._wakeup.set()

    def forget(self, session: ClientSession) -> None:
        self._ready.pop(session, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._gather_loop(), name="batcher")

    async def stop(self) -> None:
        """Stop taking frames and let the batches already running finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _take_batch(self) -> list[tuple[ClientSession, FrameJob, FrameWork]]:
        batch = []
        while self._ready and len(batch) < self._max_batch:
            session = next(iter(self._ready))
            del self._ready[session]
            job, work = session.take()
            batch.append((session, job, work))
        return batch

    async def _gather_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            await self._slots.acquire()
            batch = self._take_batch()
            if not self._ready:
                self._wakeup.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[ClientSession, FrameJob, FrameWork]]) -> None:
        works = [work for _, _, work in batch]
        taken_at = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            timings = await loop.run_in_executor(self._executor, self._pipeline.run, works)
            self._stats.record_batch(len(batch), timings.decode_s, timings.process_s, timings.encode_s)
            # The device's load is its model time; decode and encode run on the codec pool.
            self._load.record(timings.process_s, len(batch), [taken_at - job.received_at for _, job, _ in batch])
        except Exception:  # the pipeline isolates frame failures; this is a bug, fail the batch loudly
            log.exception("batch of %d frames crashed", len(batch))
            for work in works:
                if work.result is None and work.error is None:
                    work.error = ProtocolError(ErrorCode.PROCESSING_FAILED, "the server failed to process this frame", work.seq)
        finally:
            self._slots.release()
        for session, job, work in batch:
            session.complete(job, work)
