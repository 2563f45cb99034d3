"""The probe's clients: each one connects, wears its face, warms up, streams, and reports.

All clients of a run move through the same steps together. At each step (`RENDEZVOUS`)
they wait until every client has arrived, the probe does its part (reads the server's
`/stats`), and only then do they go on: so the server's numbers before and after are taken
while no client streams, and every client's measured phase covers the same interval.

Clients run in this process (`run_clients`), or spread over worker processes
(`run_clients_in_processes`) when one Python process cannot keep up with them; there the
workers meet the probe at a `multiprocessing.Barrier`, twice per step (arrived; probe done).
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.queues
import queue
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Sequence

import aiohttp

from client.__main__ import run_loop
from client.config import ClientConfig

from .drive import AnswerHook, StreamDriver
from .frames import moving_sequence, source_face
from .probe_results import FRAME_COUNTERS, ClientResult, counter_deltas

RENDEZVOUS = ("connected", "warmed up", "measured")
Rendezvous = Callable[[str], Awaitable[None]]  # the probe's part at each step, clients waiting
FLUSH_S = 0.5  # how often a worker process sends its round trips to the probe's progress line
RESULT_TIMEOUT_S = 60.0


class ProbeError(RuntimeError):
    """A client or worker process of the probe failed; the message says which and why."""


@dataclass(frozen=True)
class ClientSpec:
    """Everything one probe client needs; plain data, so it can be sent to a worker process."""

    index: int
    config: ClientConfig  # server URL, token/TLS, binary, in-flight window
    fps: float
    warmup_s: float
    duration_s: float
    scene: str
    width: int
    height: int
    quality: int

    @property
    def mode(self) -> str:
        return "binary" if self.config.binary else "json"

    def frames(self) -> tuple[bytes, ...]:
        return moving_sequence(self.scene, self.width, self.height, self.quality, self.index)


class Gate:
    """Clients `wait()` here; once all `parties` have, the coordinator acts, then `release()`s them."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._waiting = 0
        self._all_here = asyncio.Event()
        self._go = asyncio.Event()

    async def wait(self) -> None:
        go = self._go
        self._waiting += 1
        if self._waiting == self._parties:
            self._all_here.set()
        await go.wait()

    async def all_here(self) -> None:
        await self._all_here.wait()

    def release(self) -> None:
        go = self._go
        self._waiting, self._all_here, self._go = 0, asyncio.Event(), asyncio.Event()
        go.set()


async def run_client(spec: ClientSpec, frames: Sequence[bytes], gate: Gate, http: aiohttp.ClientSession,
                     on_answer: AnswerHook | None) -> ClientResult:
    """One client's whole run, meeting the others at `gate` at each of the `RENDEZVOUS`."""
    face_name, face = source_face(spec.index)
    driver = StreamDriver(spec.config, frames, spec.fps, on_answer)
    await driver.connect(http)
    try:
        await driver.send_source(face, f"source face {face_name!r} of client {spec.index}")
        await gate.wait()
        if spec.warmup_s > 0:
            await driver.stream(spec.warmup_s, "warm-up")
        before = (await driver.server_stats()).get("client", {})
        await gate.wait()
        phase = await driver.stream(spec.duration_s, "measure")
        after = (await driver.server_stats()).get("client", {})
        await gate.wait()
    finally:
        await driver.close()
    return ClientResult(
        index=spec.index, mode=spec.mode, source=face_name, seconds=phase.seconds, sent=phase.sent,
        answered=phase.answered, skipped=phase.skipped, errors=phase.errors, timeouts=phase.timeouts,
        bytes_up=phase.bytes_up, bytes_down=phase.bytes_down, server=counter_deltas(before, after, FRAME_COUNTERS),
        server_in_flight=int(after.get("frames_in_flight", 0)), latencies_s=phase.latencies_s,
        drain_latencies_s=phase.drain_latencies_s,
    )


async def _unless_a_client_fails(waiter: Awaitable[None], clients: Iterable[asyncio.Task[ClientResult]]) -> None:
    """Await `waiter`, but raise at once if a client fails first (the others would wait forever)."""
    wait_task = asyncio.ensure_future(waiter)
    try:
        while not wait_task.done():
            done, _ = await asyncio.wait({wait_task, *clients}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {wait_task}:
                task.result()  # a client's own error, with its message
                raise ProbeError("a client finished before the run did")
    finally:
        wait_task.cancel()


async def run_clients(specs: Sequence[ClientSpec], rendezvous: Rendezvous,
                      on_answer: AnswerHook | None) -> list[ClientResult]:
    """Run `specs` in this event loop; `rendezvous(step)` runs at each step while every client waits."""
    frames = [spec.frames() for spec in specs]  # encode up front: none of it while streaming
    gate = Gate(len(specs))
    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(run_client(spec, f, gate, http, on_answer), name=f"probe-client-{spec.index}")
                 for spec, f in zip(specs, frames)]
        try:
            for step in RENDEZVOUS:
                await _unless_a_client_fails(gate.all_here(), tasks)
                await rendezvous(step)
                gate.release()
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# ---- worker processes -----------------------------------------------------------------

def _worker_main(specs: list[ClientSpec], barrier: threading.Barrier, answers: multiprocessing.queues.Queue,
                 results: multiprocessing.queues.Queue, step_timeout_s: float) -> None:
    """Entry point of a worker process: run its clients; answer (results) or ("error", message)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pending: list[tuple[str, float]] = []

    async def rendezvous(step: str) -> None:
        flush()
        await asyncio.to_thread(barrier.wait, step_timeout_s)  # every client everywhere has arrived
        await asyncio.to_thread(barrier.wait, step_timeout_s)  # the probe has done its part

    def flush() -> None:
        if pending:
            answers.put(list(pending))
            pending.clear()

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            flush()

    async def main() -> list[ClientResult]:
        task = asyncio.create_task(flusher())
        try:
            return await run_clients(specs, rendezvous, lambda label, latency: pending.append((label, latency)))
        finally:
            task.cancel()

    try:
        results.put(("ok", run_loop(main())))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the probe, or it waits forever
        barrier.abort()
        clients = ", ".join(str(spec.index) for spec in specs)
        results.put(("error", f"client(s) {clients}: {exc or type(exc).__name__}"))


async def run_clients_in_processes(specs: Sequence[ClientSpec], processes: int, rendezvous: Rendezvous,
                                   on_answer: AnswerHook | None) -> list[ClientResult]:
    """Spread `specs` round-robin over `processes` worker processes; the same steps as `run_clients`."""
    context = multiprocessing.get_context("spawn")  # never fork a process with a running event loop
    groups = [list(specs[i::processes]) for i in range(processes)]
    barrier = context.Barrier(len(groups) + 1)
    answers, results = context.Queue(), context.Queue()
    step_timeout_s = max(spec.warmup_s + spec.duration_s for spec in specs) + 180.0
    workers = [context.Process(target=_worker_main, args=(group, barrier, answers, results, step_timeout_s),
                               name=f"probe-worker-{i}", daemon=True) for i, group in enumerate(groups)]
    for worker in workers:
        worker.start()
    pump = asyncio.create_task(_pump_answers(answers, on_answer))
    try:
        for step in RENDEZVOUS:
            try:
                await asyncio.to_thread(barrier.wait, step_timeout_s)
                await rendezvous(step)
                await asyncio.to_thread(barrier.wait, step_timeout_s)
            except threading.BrokenBarrierError:
                raise ProbeError(await _worker_failure(results, step)) from None
        collected: list[ClientResult] = []
        for _ in workers:
            status, payload = await asyncio.to_thread(results.get, timeout=RESULT_TIMEOUT_S)
            if status != "ok":
                raise ProbeError(payload)
            collected.extend(payload)
        return sorted(collected, key=lambda result: result.index)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        barrier.abort()  # releases any worker still waiting if the probe itself failed
        for worker in workers:
            await asyncio.to_thread(worker.join, 10)
            if worker.is_alive():
                worker.terminate()
                worker.join()


async def _worker_failure(results: multiprocessing.queues.Queue, step: str) -> str:
    try:
        status, payload = await asyncio.to_thread(results.get, timeout=RESULT_TIMEOUT_S)
    except queue.Empty:
        return f"a worker process stopped answering before step {step!r}"
    return payload if status == "error" else f"a worker process stopped answering before step {step!r}"


async def _pump_answers(answers: multiprocessing.queues.Queue, on_answer: AnswerHook | None) -> None:
    """Feed the workers' round trips to the progress line."""
    while True:
        try:
            batch = await asyncio.to_thread(answers.get, timeout=FLUSH_S)
        except queue.Empty:
            continue
        if on_answer is not None:
            for label, latency in batch:
                on_answer(label, latency)
