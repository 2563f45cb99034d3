"""The sans-I/O parts of the client: in-flight window, reconnect backoff, pacing, statistics."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.backoff import Backoff
from client.flow import InFlightWindow
from client.sources import Pacer
from client.stats import StreamStats, percentile


def send(window: InFlightWindow, now: float = 0.0) -> int:
    assert window.can_send(now)
    return window.sent(now)


# ---- in-flight window -------------------------------------------------------------
def test_window_allows_k_frames_then_refuses():
    window = InFlightWindow(limit=2)
    assert [send(window), send(window)] == [1, 2]
    assert window.in_flight == 2
    assert not window.can_send(0.1)


def test_an_answer_settles_every_older_frame_as_superseded():
    """Latest-frame-wins: frame 2 replaced frame 1 on the server, only 2 is answered."""
    window = InFlightWindow(limit=2)
    send(window), send(window)
    assert window.settle(2)
    assert window.in_flight == 0
    assert [send(window), send(window)] == [3, 4]


def test_answers_in_order_free_one_slot_each():
    window = InFlightWindow(limit=3)
    for _ in range(3):
        send(window)
    assert window.settle(1) and window.in_flight == 2
    assert window.can_send(0.0)
    assert window.settle(3) and window.in_flight == 0


def test_late_unknown_and_missing_seqs_settle_nothing():
    window = InFlightWindow(limit=2)
    send(window), send(window)
    window.settle(2)
    assert not window.settle(1)  # already settled
    assert not window.settle(2)
    assert not window.settle(99)  # never sent: must not open the window beyond what was sent
    assert not window.settle(None)
    assert window.in_flight == 0


def test_a_lost_frame_is_settled_by_the_clock():
    window = InFlightWindow(limit=2, timeout_s=1.0)
    send(window, 0.0), send(window, 0.5)
    assert not window.can_send(0.9)
    assert window.can_send(1.0)  # frame 1 timed out, frame 2 still counts
    assert window.in_flight == 1 and window.timeouts == 1
    assert window.can_send(1.6) and window.in_flight == 0 and window.timeouts == 2


def test_reset_forgets_the_frames_of_a_dead_connection_and_seq_keeps_growing():
    window = InFlightWindow(limit=2)
    send(window), send(window)
    window.reset()
    assert window.in_flight == 0
    assert send(window) == 3
    assert not window.settle(2)


def test_max_in_flight_records_the_peak():
    window = InFlightWindow(limit=3)
    send(window), send(window)
    window.settle(2)
    send(window)
    assert window.max_in_flight == 2


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"timeout_s": 0}])
def test_window_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        InFlightWindow(**kwargs)


@given(
    limit=st.integers(1, 5),
    steps=st.lists(st.tuples(st.sampled_from(["send", "answer", "wait"]), st.integers(0, 10)), max_size=200),
)
def test_window_never_exceeds_its_limit(limit, steps):
    """Whatever the server answers (any seq, any order, or nothing), the bound holds."""
    window = InFlightWindow(limit=limit, timeout_s=5.0)
    now = 0.0
    for action, value in steps:
        if action == "send":
            if window.can_send(now):
                window.sent(now)
        elif action == "answer":
            window.settle(window.last_settled + value)
        else:
            now += value
        assert 0 <= window.in_flight <= limit
    assert window.max_in_flight <= limit


# ---- backoff ----------------------------------------------------------------------
def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    backoff = Backoff(initial_s=0.5, max_s=4.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jittered, not a fixed cap


def test_backoff_reset_starts_over():
    backoff = Backoff(initial_s=0.5, max_s=10.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(initial_s=2.0, max_s=1.0)


# ---- pacing -----------------------------------------------------------------------
def test_pacer_spaces_reads_and_does_not_burst_after_a_stall():
    pacer = Pacer(10.0)
    assert pacer.delay(0.0) == 0.0
    assert pacer.delay(0.0) == pytest.approx(0.1)
    assert pacer.delay(0.1) == pytest.approx(0.1)  # the third read at 0.2
    assert pacer.delay(5.0) == 0.0  # five seconds late: start over from now
    assert pacer.delay(5.0) == pytest.approx(0.1)


# ---- statistics -------------------------------------------------------------------
def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0
    assert math.isnan(percentile([], 50))


def test_stream_stats_summary_line():
    stats = StreamStats()
    stats.frame_sent(10.0)
    stats.frame_sent(10.1)
    stats.skipped = 1
    stats.frame_received(10.05, 0.020)
    stats.frame_received(10.15, 0.040)
    assert stats.recent_fps(10.2) == 2.0
    assert stats.recent_fps(12.0) == 0.0
    line = stats.summary(12.0, max_in_flight=2, in_flight_limit=2)
    assert "\n" not in line
    assert "frames sent 2, received 2, skipped 1" in line
    assert "latency p50 20.0 ms, p95 40.0 ms" in line
    assert "max in flight 2/2" in line


# ---- pacing ---------------------------------------------------------------------------
def test_a_paced_answer_holds_the_next_frame_until_the_servers_turn():
    window = InFlightWindow(limit=2, pace_slack_s=0.01)
    send(window, 0.0)
    assert window.can_send(0.005), "no pace yet: the window alone decides"
    assert window.settle(1, pace_s=0.3)
    assert not window.can_send(0.1) and not window.can_send(0.289)
    assert window.can_send(0.29), "within the slack: the camera frame nearest the turn goes"
    assert window.next_chance(0.1) == pytest.approx(0.29)


def test_the_last_pace_spaces_frames_until_the_next_answer():
    """On a slow network answers come late: frames keep the server's rhythm, two in flight."""
    window = InFlightWindow(limit=2)
    send(window, 0.0)
    window.settle(1, pace_s=0.04)
    send(window, 0.04)
    assert not window.can_send(0.06)
    send(window, 0.08)  # the second slot fills at the pace, before any answer
    assert not window.can_send(0.12), "the window is full"
    assert window.next_chance(0.12) == pytest.approx(0.04 + window.timeout_s)


def test_a_reconnect_forgets_the_pace():
    window = InFlightWindow(limit=2)
    send(window, 0.0)
    window.settle(1, pace_s=10.0)
    window.reset()
    assert window.can_send(0.1)
    assert window.pace_s is None
