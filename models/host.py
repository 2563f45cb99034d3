"""Host work of a batch, fanned out over the machine's cores and timed per stage.

Processors hand their per-frame and per-face host work (letterboxing, crops, NMS,
paste-back, blending) to `HostPool.map`, so a batch of many frames uses every core while
the device runs another batch's models. Each task's CPU time goes to the stage it belongs
to in the batch's `WorkAccount`: the host milliseconds per frame of each stage are what
tell how many cores a GPU server needs. Work that is too small to be worth a thread hop
(a single item) runs inline, timed the same way.
"""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import Executor
from typing import Callable, Iterator, Sequence, TypeVar

from . import work

T = TypeVar("T")
R = TypeVar("R")


class HostPool:
    """Runs host stages for the processors; without an executor everything runs inline."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor

    def map(self, stage: str, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[function(item) for item in items]`, spread over the pool, CPU time charged to `stage`."""
        account = work.current()

        def timed(item: T) -> R:
            start = time.thread_time()
            try:
                return function(item)
            finally:
                if account is not None:
                    account.add_host(stage, time.thread_time() - start)

        if self.executor is None or len(items) <= 1:
            return [timed(item) for item in items]
        return list(self.executor.map(timed, items))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Charge the CPU time of the block (run in this thread) to stage `name`."""
        account = work.current()
        start = time.thread_time()
        try:
            yield
        finally:
            if account is not None:
                account.add_host(name, time.thread_time() - start)
