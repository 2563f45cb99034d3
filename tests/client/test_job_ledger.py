"""The video job's books: a window, answers in any order written in order, resends after a drop."""
from __future__ import annotations

from client.job_ledger import JobLedger, SentFrame


def frame(seq: int) -> SentFrame:
    return SentFrame(seq=seq, jpeg=b"jpeg%d" % seq, pts=seq * 10, time_s=seq / 30)


def test_answers_in_any_order_are_written_in_order_and_a_failed_frame_as_it_was_sent():
    ledger = JobLedger(window=3)
    for seq in range(3):
        ledger.sent(frame(seq))
    assert not ledger.can_send()
    assert ledger.answered(2, b"r2") == []  # waits for 0 and 1
    assert ledger.answered(1, None) == []  # the server failed frame 1
    ready = ledger.answered(0, b"r0")
    assert [(w.frame.seq, w.result) for w in ready] == [(0, b"r0"), (1, None), (2, b"r2")]
    assert ledger.can_send() and not ledger.idle, "handed out, not yet written"
    for item in ready:
        ledger.wrote(item)
    assert ledger.idle and (ledger.written, ledger.unprocessed) == (3, 1)


def test_after_a_drop_the_unanswered_frames_are_sent_again_and_late_duplicates_ignored():
    ledger = JobLedger(window=4)
    for seq in range(4):
        ledger.sent(frame(seq))
    ledger.answered(1, b"r1")
    assert [f.seq for f in ledger.to_resend()] == [0, 2, 3]  # 1 came back: it waits for 0, not resent
    [first, second] = ledger.answered(0, b"r0")
    assert (first.frame.seq, second.frame.seq) == (0, 1)
    assert ledger.answered(0, b"again") == [] and ledger.answered(1, b"again") == []
    assert ledger.answered(7, b"never sent") == []
