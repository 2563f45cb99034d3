"""The socket-free session core, driven with a fake clock: no asyncio, no sockets, no server."""
from __future__ import annotations

import orjson
import pytest

from protocol import (
    Config,
    Frame,
    Ping,
    ProcessedFrame,
    ProtocolError,
    ErrorCode,
    SourceFace,
    StatsRequest,
    decode,
    encode,
    encode_json,
)
from protocol.binary_codec import HEADER, Kind
from server.pipeline import BatchItem
from server.session_core import CONTROL_BACKLOG, JOB_QUEUE, PrepareSource, ReadyAt, SessionCore, SessionLimits
from server.stats import ServerStats

LIMITS = SessionLimits(max_fps=10.0, max_source_bytes=1000)


def core(**fields) -> SessionCore:
    return SessionCore(client_id=1, stats=ServerStats(), limits=LIMITS, **fields)


def offer(session: SessionCore, seq: int, now: float, binary: bool = True):
    frame = Frame(jpeg=b"\xff\xd8" + bytes([seq]), timestamp=float(seq), seq=seq)
    return session.receive(encode(frame, binary).data, binary, now, 1000.0 + now)


def finish(session: SessionCore, now: float, result: bytes = b"jpeg") -> tuple:
    job, work = session.take(now)
    work.result = result
    return job, work


def replies(session: SessionCore, now: float) -> list:
    out = []
    while (outgoing := session.next_outgoing()) is not None:
        out.append(decode(outgoing.data, outgoing.binary))
        session.sent(outgoing, now)
    return out


def assert_books_balance(session: SessionCore) -> None:
    for counts in (session.frames, session.stats.frames):
        assert counts.received == counts.processed + counts.superseded + counts.failed + counts.in_flight


def test_a_frame_offered_to_an_empty_mailbox_is_ready_at_once_and_comes_back():
    session = core()
    assert offer(session, 1, now=5.0) == ReadyAt(5.0)
    job, work = finish(session, now=5.01)
    assert (work.seq, work.context.order, work.context.time) == (1, 0, 5.0)
    session.complete(job, work)
    [reply] = replies(session, now=5.05)
    assert reply == ProcessedFrame(jpeg=b"jpeg", timestamp=1.0, seq=1)
    assert session.frames.processed == 1 and session.frames.passthrough == 1  # no source face: passthrough
    assert list(session.stats.server_times) == [pytest.approx(0.05)]


def test_a_newer_frame_supersedes_the_waiting_one_and_keeps_its_place():
    session = core()
    assert offer(session, 1, now=0.0) == ReadyAt(0.0)
    assert offer(session, 2, now=0.01) is None  # already marked ready: the batcher need not hear again
    assert offer(session, 3, now=0.02) is None
    _, work = session.take(0.03)
    assert work.seq == 3
    assert session.frames.superseded == 2
    assert_books_balance(session)


def test_the_rate_cap_makes_the_next_frame_wait_in_the_mailbox():
    session = core()
    offer(session, 1, now=0.0)
    finish(session, now=0.0)
    assert offer(session, 2, now=0.02) == ReadyAt(pytest.approx(0.1))  # 10 fps: not before 0.1 s


def test_results_never_go_back_in_time_and_a_slow_reader_keeps_only_the_newest():
    session = core()
    offer(session, 1, now=0.0)
    first = finish(session, now=0.0)
    offer(session, 2, now=0.2)
    second = finish(session, now=0.2)
    session.complete(*second)  # frame 2's batch came back first
    session.complete(*first)  # frame 1 is older than a result already in: superseded
    offer(session, 3, now=0.4)
    third = finish(session, now=0.4, result=b"three")
    session.complete(*third)  # frame 2's result was never sent: superseded by frame 3's
    assert [r.seq for r in replies(session, now=0.5)] == [3]
    assert (session.frames.processed, session.frames.superseded) == (1, 2)
    assert_books_balance(session)


def test_close_fails_whatever_is_left_and_later_results():
    session = core()
    offer(session, 1, now=0.0)
    in_batch = finish(session, now=0.0)
    offer(session, 2, now=0.1)  # waiting in the mailbox
    session.close()
    session.complete(*in_batch)  # the batch returns after the client left
    assert session.frames.failed == 2 and session.frames.in_flight == 0
    assert session.next_outgoing() is None
    assert_books_balance(session)


def test_a_failed_frame_is_answered_with_an_error():
    session = core()
    offer(session, 7, now=0.0)
    job, work = session.take(0.0)
    work.error = ProtocolError(ErrorCode.BAD_IMAGE, "not a JPEG", 7)
    session.complete(job, work)
    [error] = replies(session, now=0.1)
    assert (error.code, error.seq) == ("bad_image", 7)
    assert session.frames.failed == 1 and session.stats.errors["bad_image"] == 1


def test_a_frame_that_cannot_be_parsed_is_received_and_failed():
    session = core()
    version_two = HEADER.pack(2, Kind.FRAME, 0, 5, 1.0) + b"\xff\xd8"
    assert session.receive(version_two, True, 0.0, 0.0) is None
    assert (session.frames.received, session.frames.failed) == (1, 1)
    [error] = replies(session, now=0.0)
    assert (error.code, error.seq) == ("unsupported_version", 5)
    assert session.receive(b"\x01\x01\x00", True, 0.0, 0.0) is None  # not even a header: no frame received
    assert session.frames.received == 1


def test_control_messages_come_before_results_and_back_up_to_a_limit():
    session = core()
    offer(session, 1, now=0.0)
    session.complete(*finish(session, now=0.0))
    session.receive(encode_json(Ping()), False, 0.0, 123.0)
    session.receive(encode_json(Config(options={"opacity": 0.5})), False, 0.0, 0.0)
    kinds = [type(message).__name__ for message in replies(session, now=0.1)]
    assert kinds == ["Pong", "ConfigConfirmation", "ProcessedFrame"]
    assert session.options["opacity"] == 0.5
    for _ in range(CONTROL_BACKLOG):
        session.receive(encode_json(Ping()), False, 0.0, 0.0)
    assert session.backlog_full


def test_stats_requests_waiting_together_share_one_answer_made_when_it_is_sent():
    """100,000 stats requests once made 100,000 snapshots and slowed every client."""
    session = core()
    for _ in range(1000):
        session.receive(encode_json(StatsRequest()), False, 0.0, 0.0)
    assert not session.backlog_full
    offer(session, 1, now=0.0)  # after the requests, before the answer goes
    [stats] = replies(session, now=0.0)
    assert stats.data["client"]["frames_received"] == 1
    session.receive(encode_json(StatsRequest()), False, 0.0, 0.0)
    assert [type(m).__name__ for m in replies(session, now=0.0)] == ["Stats"]  # a later request: a new answer


def test_a_source_face_is_prepared_by_the_shell_and_confirmed():
    session = core()
    image = b"\xff\xd8photo"
    assert session.receive(encode_json(SourceFace(image=image)), False, 0.0, 0.0) == PrepareSource(image)
    session.source_prepared({"classic": "prepared"})
    [confirmation] = replies(session, now=0.0)
    assert confirmation.status == "success" and session.sources == {"classic": "prepared"}
    session.receive(encode_json(SourceFace(image=b"x" * 2000)), False, 0.0, 0.0)  # over the size limit
    [refusal] = replies(session, now=0.0)
    assert refusal.status == "error" and "at most 1000" in refusal.message
    assert session.sources == {"classic": "prepared"}, "a refused photo changes nothing"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_paced_client_is_told_when_to_send_next(binary):
    session = core(pace=lambda received_at, taken_at: (taken_at - received_at) + 0.25)
    offer(session, 1, now=1.0, binary=binary)
    session.complete(*finish(session, now=1.04))
    [reply] = replies(session, now=1.1)
    assert reply.pace_ms == 290  # 40 ms in the mailbox + a 250 ms turn


def test_an_unpaced_client_sees_no_pace():
    session = core()
    offer(session, 1, now=0.0, binary=False)
    session.complete(*finish(session, now=0.0))
    outgoing = session.next_outgoing()
    assert b"pace_ms" not in outgoing.data
    assert orjson.loads(outgoing.data)["type"] == "processed_frame"


def test_frame_work_carries_the_clients_context():
    session = core(sources={"classic": "face"}, options={"opacity": 0.7})
    offer(session, 1, now=0.0)
    _, first = session.take(0.0)
    offer(session, 2, now=1.0)
    _, second = session.take(1.0)
    assert isinstance(first, BatchItem)
    assert first.context.sources == {"classic": "face"} and first.context.options["opacity"] == 0.7
    assert (first.context.order, second.context.order) == (0, 1)
    assert first.context.state is second.context.state  # the client's tracks live across its frames
    assert first.context.scratch is not second.context.scratch  # each frame's hand-over is its own


def test_a_job_keeps_every_frame_and_answers_in_order_whatever_order_batches_return():
    session = core(job=True)
    for seq in range(1, 5):
        assert offer(session, seq, now=0.0) == ReadyAt(0.0, queued=True)  # no rate cap, no superseding
    taken = [session.take(0.0) for _ in range(4)]
    assert [work.seq for _, work in taken] == [1, 2, 3, 4]
    assert [work.context.time for _, work in taken] == [1.0, 2.0, 3.0, 4.0], "tracking follows the video's time"
    for index in (2, 0, 3, 1):  # the batches come back out of order; frame 3 failed
        job, work = taken[index]
        if work.seq == 3:
            work.error = ProtocolError(ErrorCode.BAD_IMAGE, "broken", 3)
        else:
            work.result = b"r%d" % work.seq
        session.complete(job, work)
    answers = replies(session, now=0.1)
    assert [(type(a).__name__, a.seq) for a in answers] == [
        ("Error", 3), ("ProcessedFrame", 1), ("ProcessedFrame", 2), ("ProcessedFrame", 4)]
    assert (session.frames.processed, session.frames.failed, session.frames.superseded) == (3, 1, 0)
    assert_books_balance(session)


def test_a_job_stops_being_read_when_its_queue_is_full_and_counts_what_is_left_on_close():
    session = core(job=True)
    for seq in range(JOB_QUEUE - 1):
        offer(session, seq, now=0.0)
    assert not session.backlog_full
    job, work = finish(session, now=0.0)
    offer(session, JOB_QUEUE, now=0.0)
    assert session.backlog_full, "taken but unanswered frames count too"
    session.complete(job, work)
    replies(session, now=0.0)
    assert not session.backlog_full
    session.close()
    assert session.frames.failed == JOB_QUEUE - 1
    assert_books_balance(session)
