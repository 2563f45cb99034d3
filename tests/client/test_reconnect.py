"""The reconnect policy on its own: outcomes in, delays and give-ups out; no sockets, no clock."""
from __future__ import annotations

import random

import pytest

from client.backoff import Backoff
from client.config import ClientConfig
from client.errors import ConnectError
from client.reconnect import ReconnectPolicy, reconnect_policy
from protocol import Reconnect

URL = "ws://example:8765"
LOST = f"connection to {URL} lost; reconnecting"


def policy(retries: int = 2, max_s: float = 8.0) -> ReconnectPolicy:
    return ReconnectPolicy(retries, Backoff(initial_s=0.5, max_s=max_s, rng=random.Random(7)))


def test_the_first_connection_gets_its_retries_then_gives_up_naming_why():
    first = policy(retries=2)
    delays = []
    for _ in range(2):
        retry = first.refused("Cannot connect: refused")
        assert retry.note == f"Cannot connect: refused; retrying in {retry.delay_s:.1f} s"
        delays.append(retry.delay_s)
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0, "a backoff step each"
    with pytest.raises(ConnectError, match=r"^Cannot connect: refused \(gave up after 3 attempts\)$"):
        first.refused("Cannot connect: refused")


def test_once_a_connection_worked_it_never_gives_up_and_counts_reconnections():
    run = policy(retries=0)
    assert run.connected() is False, "the first connection is no reconnection"
    for _ in range(20):
        assert run.refused("Cannot connect: refused").delay_s <= 8.0, "capped, never given up"
    assert run.connected() is True


def test_a_connection_that_delivered_frames_reconnects_at_once_and_resets_the_backoff():
    run = policy()
    run.connected()
    for _ in range(4):
        run.refused("down")
    retry = run.ended(LOST, delivered=True)
    assert (retry.delay_s, retry.note) == (0.0, LOST)
    assert run.refused("down").delay_s <= 0.5, "the backoff starts over"


def test_a_connection_that_delivered_nothing_waits_a_backoff_step():
    run = policy()
    run.connected()
    first, second = run.ended(LOST, delivered=False), run.ended(LOST, delivered=False)
    assert first.note == f"{LOST} in {first.delay_s:.1f} s"
    assert 0.25 <= first.delay_s <= 0.5 and 0.5 <= second.delay_s <= 1.0


def test_an_unconfirmed_face_counts_as_a_failed_attempt_until_a_connection_worked():
    first = policy(retries=1)
    first.ended(LOST, delivered=False, unconfirmed=f"{URL} never confirmed the source face: code 1013")
    with pytest.raises(ConnectError, match=r"never confirmed the source face: code 1013 \(gave up after 2 attempts\)"):
        first.ended(LOST, delivered=False, unconfirmed=f"{URL} never confirmed the source face: code 1013")
    later = policy(retries=0)
    later.connected()
    for _ in range(5):
        later.ended(LOST, delivered=False, unconfirmed="no answer within 10 s")


@pytest.mark.parametrize(("delay_ms", "delay_s", "then"), [
    (0, 0.0, "reconnecting now"),
    (300, 0.3, "reconnecting in 0.3 s as asked"),
    (-5, 0.0, "reconnecting now"),
    (60_000, 8.0, "reconnecting in 8.0 s as asked"),  # never later than the backoff's cap
])
def test_a_reconnect_request_is_followed_as_asked(delay_ms, delay_s, then):
    run = policy(retries=0)
    retry = run.ended(LOST, delivered=False, asked=Reconnect(reason="draining", delay_ms=delay_ms),
                      unconfirmed="asked before the confirmation")
    assert (retry.delay_s, retry.note) == (delay_s, f"server asked to reconnect (draining); {then}")
    assert run.backoff.attempts == 0 and run.failures == 0, "neither a backoff step nor a failure"


def test_a_reason_is_always_given():
    note = policy().ended(LOST, delivered=False, asked=Reconnect()).note
    assert note == "server asked to reconnect (no reason given); reconnecting now"


def test_only_one_request_per_connection_that_delivered_frames_skips_the_backoff():
    run = policy()
    run.connected()
    asked = Reconnect(reason="maintenance")
    assert run.ended(LOST, delivered=False, asked=asked).delay_s == 0.0
    repeated = run.ended(LOST, delivered=False, asked=asked)
    assert repeated.delay_s > 0 and repeated.note.startswith(f"{LOST} in "), "a server repeating it gets the backoff"
    assert run.ended(LOST, delivered=True, asked=asked).note.startswith("server asked to reconnect"), \
        "frames came back: the next request is followed again"


def test_the_policy_of_a_run_takes_the_command_line_limits():
    run = reconnect_policy(ClientConfig(connect_retries=5, reconnect_max_s=3.0))
    assert run.retries == 5 and run.backoff.max_s == 3.0
