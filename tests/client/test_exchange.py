"""Request and reply over a fake connection: the reply asked for, the others handed on or skipped."""
from __future__ import annotations

import pytest

from client.exchange import ConnectionEnded, NoReply, request
from protocol import Error, Message, Reconnect, SourceFaceConfirmation, Stats, StatsRequest


class FakeConnection:
    """Answers from a script; then nothing (a quiet server) or the end of the connection."""

    def __init__(self, *answers: Message | None, closes: bool = False) -> None:
        self.answers = list(answers)
        self.closes = closes
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def receive(self, timeout_s: float) -> Message | None:
        if self.answers:
            return self.answers.pop(0)
        if self.closes:
            raise ConnectionEnded("code 1001")
        return None


async def test_the_reply_comes_back_and_the_others_go_to_on_other():
    others: list[Message] = []

    async def on_other(message: Message) -> None:
        others.append(message)

    error, stats = Error(code="x", message="y"), Stats(data={"n": 1})
    connection = FakeConnection(None, error, SourceFaceConfirmation(status="success"), stats)
    reply = await request(connection.send, connection.receive, StatsRequest(), Stats, 1.0, on_other)
    assert reply is stats and connection.sent == [StatsRequest()]
    assert others == [error, SourceFaceConfirmation(status="success")]


async def test_any_of_several_reply_types_ends_the_wait():
    connection = FakeConnection(Error(code="x", message="y"), Reconnect(reason="draining"))
    reply = await request(connection.send, connection.receive, StatsRequest(), (SourceFaceConfirmation, Reconnect), 1.0)
    assert reply == Reconnect(reason="draining")


async def test_no_reply_within_the_deadline():
    connection = FakeConnection(Error(code="x", message="y"))
    with pytest.raises(NoReply, match=r"^no answer within 0.05 s$"):
        await request(connection.send, connection.receive, StatsRequest(), Stats, 0.05)


async def test_the_connection_ending_first_says_how():
    connection = FakeConnection(Error(code="x", message="y"), closes=True)
    with pytest.raises(ConnectionEnded, match=r"^code 1001$"):
        await request(connection.send, connection.receive, StatsRequest(), Stats, 1.0)
