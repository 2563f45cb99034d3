"""The scheduler with a fake clock: fairness, taking late, batch sizes for a CPU and a GPU, pacing."""
from __future__ import annotations

import collections
from dataclasses import dataclass

import pytest

from models.costs import LinearCost
from models.work import WorkAccount
from server.scheduler import ACTIVE_WINDOW_S, PROBE_EVERY, Scheduler, Take, Wait


def learned(cost: LinearCost, fixed_s: float, per_item_s: float, sizes=(1, 2, 3, 4)) -> LinearCost:
    for _ in range(8):
        for size in sizes:
            cost.add(size, fixed_s + per_item_s * size)
    return cost


def cpu(**fields) -> Scheduler[str]:
    return Scheduler(**{"max_batch": 8, "latency_target_s": 0.06, "device_is_host": True, **fields})


def gpu(**fields) -> Scheduler[str]:
    return Scheduler(**{"max_batch": 8, "latency_target_s": 0.06, **fields})


@dataclass
class Running:
    """A batch the scheduler started, as the batcher would hold it."""

    batch_id: int
    clients: list[str]
    taken_at: float
    account: WorkAccount


def take(scheduler: Scheduler[str], now: float) -> Running:
    """Start the batch the scheduler decides to take at `now` (it must decide to take one)."""
    decision = scheduler.plan(now)
    assert isinstance(decision, Take), decision
    account = WorkAccount(priority=now)
    batch_id = scheduler.started(len(decision.clients), now, [0.0] * len(decision.clients), account)
    return Running(batch_id, decision.clients, now, account)


def run(scheduler: Scheduler[str], clients: list[str], now: float) -> Running:
    """Take `clients` as one batch at `now` (it must be the scheduler's decision)."""
    batch = take(scheduler, now)
    assert batch.clients == clients, batch.clients
    return batch


def finish(scheduler: Scheduler[str], batch: Running) -> float:
    """`batch` returns having cost what the scheduler's fits predict, so what it learns from it
    leaves them as the test set them; returns when its results were in."""
    frames, account = len(batch.clients), batch.account
    account.device_s = scheduler.batch_device.predict(frames)
    if scheduler.batch_busy.known:
        account.processed_at = batch.taken_at + scheduler.batch_busy.predict(frames)
    done = batch.taken_at + scheduler.batch_time.predict(frames)
    scheduler.finished(batch.batch_id, done)
    return done


def test_clients_are_taken_oldest_waiting_first_and_a_busy_cpu_takes_nothing():
    scheduler = cpu()
    for name, at in (("a", 0.0), ("b", 0.001), ("c", 0.002)):
        scheduler.mark_ready(name, at)
    scheduler.mark_ready("a", 0.003)  # a newer frame of a: it keeps its place
    batch = run(scheduler, ["a"], now=0.01)  # nothing learned yet: one frame to learn from
    assert scheduler.plan(0.02) == Wait(None), "the CPU is processing a batch: the rest wait in their mailboxes"
    batch.account.processed_at = 0.05  # only encoding is left: the next batch may start
    run(scheduler, ["b"], now=0.05)


def test_clients_streaming_as_fast_as_they_can_take_turns():
    """Fairness: a batch takes the clients that have waited longest, one frame each (a live
    client's newer frame replaces the one waiting and keeps its place), and a client just
    served waits behind the others. Five clients send their next frame as soon as a result
    comes back, one of them ten while it waits; in batches of two (a fixed cost per call makes
    two pay) each gets a turn at least every third batch, and all get the same number of frames."""
    scheduler = gpu(max_batch=2)
    learned(scheduler.batch_time, 0.010, 0.008)
    learned(scheduler.batch_device, 0.006, 0.001)
    clients = ["a", "b", "flood", "c", "d"]
    for client in clients:
        scheduler.mark_ready(client, 0.0)
    frames: collections.Counter[str] = collections.Counter()
    last_turn = dict.fromkeys(clients, -1)
    now = 0.0
    for index in range(50):
        batch = take(scheduler, now)
        assert len(set(batch.clients)) == len(batch.clients) == 2, batch.clients
        for client in batch.clients:
            assert index - last_turn[client] <= 3, (client, index, last_turn)
            last_turn[client] = index
        frames.update(batch.clients)
        now = finish(scheduler, batch)
        for client in batch.clients:  # the results are back: their clients send the next frames
            scheduler.mark_ready(client, now)
        for _ in range(10):
            scheduler.mark_ready("flood", now)
    assert frames == dict.fromkeys(clients, 20)


def test_a_frame_under_the_rate_cap_waits_until_its_time():
    scheduler = gpu()
    scheduler.mark_ready("a", 5.0)
    assert scheduler.plan(4.9) == Wait(5.0)
    run(scheduler, ["a"], now=5.0)


def test_a_cpu_settles_on_one_frame_a_batch():
    """On a CPU a batch of n costs about n frames: batching buys nothing, every frame waits for all."""
    scheduler = cpu()
    learned(scheduler.batch_time, 0.001, 0.020)
    learned(scheduler.batch_busy, 0.0005, 0.018)
    assert scheduler.batch_size(available=8) == 1


def test_a_gpu_batches_up_to_the_latency_target():
    """A fixed cost per call dominates: the more frames a batch holds, the more the device does,
    until the batch would take longer than the target (60 ms allows 6 frames at 10 + 8 x n ms),
    or a frame more buys less than a tenth more throughput (6 + n ms of device time for n:
    5 frames give 91% of what 6 would)."""
    scheduler = gpu()
    learned(scheduler.batch_time, 0.010, 0.008)
    learned(scheduler.batch_device, 0.006, 0.001)
    assert scheduler.batch_size(available=8) == 5
    assert scheduler.batch_size(available=3) == 3
    relaxed = gpu(latency_target_s=1.0, batch_time=scheduler.batch_time, batch_device=scheduler.batch_device)
    assert relaxed.batch_size(available=50) == 7  # of the 8 --max-batch allows, 7 give 94% of 8's throughput


def test_a_size_never_seen_is_tried_now_and_then():
    scheduler = gpu()
    scheduler.batch_time.add(1, 0.01)
    scheduler.batch_device.add(1, 0.005)
    sizes = []
    for step in range(2 * PROBE_EVERY):
        for name in "abc":
            scheduler.mark_ready(name, step)
        batch = take(scheduler, float(step))
        sizes.append(len(batch.clients))
        finish(scheduler, batch)
    assert sizes.count(2) == 2 and set(sizes) == {1, 2}, sizes


def test_a_gpu_batch_is_taken_when_the_device_is_about_to_be_free():
    scheduler = gpu(queue_ahead=0.0)
    learned(scheduler.batch_time, 0.010, 0.010)
    learned(scheduler.batch_device, 0.0, 0.020)
    learned(scheduler.lead, 0.0, 0.005)
    scheduler.mark_ready("a", 0.0)
    batch = run(scheduler, ["a"], now=0.0)  # expects 20 ms of model time
    scheduler.mark_ready("b", 0.001)
    assert scheduler.plan(0.001) == Wait(pytest.approx(0.016)), "b would only wait for the device: not yet"
    batch.account.device_s = 0.015  # a's model calls are three quarters done
    run(scheduler, ["b"], now=0.0151)


def test_the_turn_of_a_paced_client_is_its_share_of_the_device():
    scheduler = cpu()
    learned(scheduler.batch_time, 0.0, 0.050)
    learned(scheduler.batch_busy, 0.0, 0.040)
    for name in "abcd":
        scheduler.mark_ready(name, 10.0)
    # Four active clients, 40 ms of processing a frame: a turn comes every 160 ms; the frame
    # waited 15 ms in its mailbox, so the next one goes 175 ms after it was sent.
    assert scheduler.pace_s(now=10.5, received_at=10.0, taken_at=10.015) == pytest.approx(0.175)
    assert scheduler.pace_s(now=13.0, received_at=12.9, taken_at=12.9) == pytest.approx(0.04), \
        "clients gone quiet for long no longer share the turn"


def test_a_job_takes_no_turn_from_paced_live_clients():
    scheduler = cpu()
    learned(scheduler.batch_time, 0.0, 0.050)
    learned(scheduler.batch_busy, 0.0, 0.040)
    scheduler.mark_ready("live", 10.0)
    scheduler.mark_ready("job", 10.0, queued=True)
    assert scheduler.pace_s(now=10.5, received_at=10.0, taken_at=10.0) == pytest.approx(0.04)


def test_a_job_fills_what_live_clients_leave_without_slowing_their_batches_much():
    """20 + 4 x n ms a batch. Live frames go first; while live clients stream, the job may make a
    batch a quarter slower (two live frames: 28 ms alone, one job frame more is 32 ms; a job's
    own batch: 24 ms for one frame, two are 28 ms); once they are quiet it batches freely."""
    scheduler = gpu(latency_target_s=0.1)
    learned(scheduler.batch_time, 0.020, 0.004)
    learned(scheduler.batch_device, 0.006, 0.001)
    for at in range(12):
        scheduler.mark_ready("job", at / 1000, queued=True)
    scheduler.mark_ready("a", 0.003)
    scheduler.mark_ready("b", 0.004)
    back = finish(scheduler, run(scheduler, ["a", "b", "job"], now=0.02))  # the job came first, but live goes first
    finish(scheduler, run(scheduler, ["job", "job"], now=back))  # a job's own batch: once no other is in flight
    assert scheduler.queued["job"] == 9
    back = finish(scheduler, run(scheduler, ["job"] * 7, now=5.0))  # live clients quiet: the size the knee picks
    run(scheduler, ["job"] * 2, now=back)
    assert "job" not in scheduler.ready and not scheduler.queued


def test_a_job_alone_is_batched_for_throughput_beyond_the_live_latency_target():
    """10 + 8 x n ms a batch: a 30 ms target allows 2 frames. With no live client streaming, a
    job's frames are not held to it: the knee picks 7 (6 + n ms of device time: 7 give 94% of
    8's throughput). Once a live client streams, the target and the live rules are back."""
    scheduler = gpu(latency_target_s=0.03)
    learned(scheduler.batch_time, 0.010, 0.008)
    learned(scheduler.batch_device, 0.006, 0.001)
    for _ in range(20):
        scheduler.mark_ready("job", 0.0, queued=True)
    back = finish(scheduler, run(scheduler, ["job"] * 7, now=0.0))
    scheduler.mark_ready("live", back)
    back = finish(scheduler, run(scheduler, ["live"], now=back))  # a job frame more: 26 ms, over 1.25 x 18
    assert len(take(scheduler, back + ACTIVE_WINDOW_S).clients) == 7, "the live client has stopped streaming"


def test_on_the_cpu_a_job_frame_waits_for_a_live_frame_due_before_it_would_end():
    """40 ms of processing a frame (the next batch may start then, while this one encodes);
    the live client sends every 100 ms (last at 0.1: next due at 0.2)."""
    scheduler = cpu()
    learned(scheduler.batch_time, 0.0, 0.050)
    learned(scheduler.batch_busy, 0.0, 0.040)
    scheduler.mark_ready("live", 0.0)
    finish(scheduler, run(scheduler, ["live"], now=0.0))
    scheduler.mark_ready("live", 0.1)
    finish(scheduler, run(scheduler, ["live"], now=0.1))  # processed by 0.14
    scheduler.mark_ready("job", 0.1, queued=True)
    scheduler.mark_ready("job", 0.1, queued=True)
    finish(scheduler, run(scheduler, ["job"], now=0.14))  # processed by 0.18: before the live frame is due
    assert scheduler.plan(0.18) == Wait(pytest.approx(0.215)), "a job frame now would end after 0.2"
    scheduler.mark_ready("live", 0.2)
    finish(scheduler, run(scheduler, ["live"], now=0.2))  # processed by 0.24
    run(scheduler, ["job"], now=0.24)  # the next live frame is due at 0.3: room for one
