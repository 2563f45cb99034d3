"""Frames over real sockets: both modes, echoes, several clients, latest-frame-wins, slow readers."""
from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import numpy as np
import pytest

from protocol import Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation, Stats, StatsRequest
from server.app import SESSIONS
from tests import media
from tests.server.gate import GATHERING
from tests.server.wsclient import receive, send, send_json


def assert_same_picture(jpeg_bytes: bytes, expected: np.ndarray) -> None:
    got = media.decode(jpeg_bytes)
    assert got.shape == expected.shape
    assert np.abs(got.astype(np.int16) - expected).mean() < 4.0  # re-encoding noise only


async def stats_of(ws: aiohttp.ClientWebSocketResponse) -> dict:
    await send_json(ws, StatsRequest())
    while True:
        message = await receive(ws)
        if isinstance(message, Stats):
            return message.data


def assert_accounted(counts: dict) -> None:
    assert counts["frames_received"] == (
        counts["frames_processed"] + counts["frames_superseded"] + counts["frames_failed"]
    ), counts


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_frame_comes_back_with_its_timestamp_and_seq(start_server, http, frame_jpeg, binary):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=1700000000.125, seq=7), binary)
        reply = await receive(ws)
        assert isinstance(reply, ProcessedFrame)
        assert (reply.timestamp, reply.seq) == (1700000000.125, 7)
        assert_same_picture(reply.jpeg, media.group_photo())


async def test_json_reply_mode_follows_the_frame(start_server, http, frame_jpeg):
    """A client may mix modes; each frame is answered in the mode it came in."""
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=1.0, seq=1), binary=True)
        raw = await ws.receive(timeout=20)
        assert raw.type == aiohttp.WSMsgType.BINARY
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=2.0, seq=2), binary=False)
        raw = await ws.receive(timeout=20)
        assert raw.type == aiohttp.WSMsgType.TEXT


async def test_timestamps_are_echoed_as_sent_or_filled_in(start_server, http, frame_jpeg):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=1700000000123))  # browser: int ms
        reply = await receive(ws)
        assert reply.timestamp == 1700000000123 and isinstance(reply.timestamp, int)
        assert reply.seq is None
        before = time.time()
        await send_json(ws, Frame(jpeg=frame_jpeg))  # no timestamp: the server's time
        reply = await receive(ws)
        assert before - 1 <= reply.timestamp <= time.time() + 1


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_concurrent_clients_get_their_own_frames(start_server, http, gate, binary):
    """Frames of several clients share a batch, and each result goes back to its own client.

    The first batch (client 0's frame) is held until the other clients' frames wait in their
    mailboxes, so the next batch holds all three; then every client streams freely."""
    server = await start_server(processors=gate.registry, frame_processors=(gate.name,), max_batch=4, **GATHERING)
    clients, frames_each = 4, 12
    images = [media.numbered_frame(index) for index in range(clients)]

    async def send_frame(ws: aiohttp.ClientWebSocketResponse, index: int, seq: int) -> None:
        await send(ws, Frame(jpeg=media.jpeg(images[index]), timestamp=float(index), seq=seq), binary)

    async def run_client(index: int, ws: aiohttp.ClientWebSocketResponse) -> list[ProcessedFrame]:
        replies = [await receive(ws)]  # seq 0, sent while the gate was shut
        for seq in range(1, frames_each):
            await send_frame(ws, index, seq)
            replies.append(await receive(ws))
        for reply in replies:
            assert_same_picture(reply.jpeg, images[index])
        return replies

    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(http.ws_connect(server.make_url("/"))) for _ in range(clients)]
        await send_frame(sockets[0], 0, seq=0)
        await gate.holding()
        for index in range(1, clients):
            await send_frame(sockets[index], index, seq=0)
            await stats_of(sockets[index])  # answered after the frame was read: it waits in the mailbox
        gate.open()
        results = await asyncio.gather(*(run_client(index, ws) for index, ws in enumerate(sockets)))
        counts = await stats_of(sockets[0])
    for index, replies in enumerate(results):
        assert [r.seq for r in replies] == list(range(frames_each))
        assert {r.timestamp for r in replies} == {float(index)}
    assert counts["frames_processed"] == clients * frames_each
    by_clients = {int(n): batches for n, batches in counts["batches_by_clients"].items()}
    assert sum(by_clients.values()) == counts["batches"]
    assert max(by_clients) >= clients - 1, f"the frames that waited together were batched apart: {by_clients}"
    assert_accounted(counts)


async def test_a_client_that_floods_gets_no_more_turns_than_clients_that_wait(start_server, http, gate, frame_jpeg):
    """The batcher's fairness: a live client's mailbox holds one frame, and batches take the
    clients that have waited longest first. One frame a batch here, so the turns show one by
    one: while a frame is held at the gate, one client sends five frames and another one,
    then the client being served sends again. Each gets one turn, the flooder for its newest
    frame, and the client served last comes after the two that waited before it."""
    server = await start_server(processors=gate.registry, frame_processors=(gate.name,), max_batch=1)
    async with contextlib.AsyncExitStack() as stack:
        url = server.make_url("/")
        served, flooder, other = [await stack.enter_async_context(http.ws_connect(url)) for _ in range(3)]
        await send(served, Frame(jpeg=frame_jpeg, timestamp=0.0, seq=0), binary=True)
        await gate.holding()
        for ws, seqs in ((flooder, range(5)), (other, [0]), (served, [1])):
            for seq in seqs:
                await send(ws, Frame(jpeg=frame_jpeg, timestamp=0.0, seq=seq), binary=True)
            await stats_of(ws)  # answered once its frames were read: the newest waits in the mailbox
        gate.open()
        assert [(await receive(served)).seq, (await receive(served)).seq] == [0, 1]
        assert (await receive(flooder)).seq == 4
        assert (await receive(other)).seq == 0
        flooded = (await stats_of(flooder))["client"]
    [first], *turns = gate.batches
    assert [len(batch) for batch in turns] == [1, 1, 1], gate.batches
    assert len({client for [client] in turns}) == 3 and turns[-1] == [first], gate.batches
    assert (flooded["frames_processed"], flooded["frames_superseded"]) == (1, 4)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_burst_keeps_only_the_newest_frames(start_server, http, binary):
    server = await start_server()
    burst = 100
    jpegs = [media.jpeg(media.numbered_frame(i)) for i in range(burst)]
    async with http.ws_connect(server.make_url("/")) as ws:
        for seq, data in enumerate(jpegs):
            await send(ws, Frame(jpeg=data, timestamp=float(seq), seq=seq), binary)
        replies: list[ProcessedFrame] = []
        while not replies or replies[-1].seq != burst - 1:
            replies.append(await receive(ws))
        assert len(replies) < burst
        seqs = [r.seq for r in replies]
        assert seqs == sorted(seqs), "results must never go back in time"
        assert_same_picture(replies[-1].jpeg, media.numbered_frame(burst - 1))
        counts = await stats_of(ws)
    assert counts["client"]["frames_received"] == burst
    assert counts["client"]["frames_processed"] == len(replies)
    assert counts["client"]["frames_superseded"] == burst - len(replies)
    assert_accounted(counts)
    assert_accounted(counts["client"])


async def test_slow_reader_keeps_server_memory_bounded(start_server, http, frame_jpeg):
    """A client that stops reading only ever has its newest result waiting for it."""
    server = await start_server()
    frames = 400  # ~20 MB of results: more than loopback socket buffers hold
    async with http.ws_connect(server.make_url("/"), max_msg_size=0) as ws:
        for seq in range(frames):
            await send(ws, Frame(jpeg=frame_jpeg, timestamp=float(seq), seq=seq), binary=True)
            if seq % 50 == 0:
                await asyncio.sleep(0.05)  # let the server process and try to send
        await asyncio.sleep(1.0)
        async with http.get(server.make_url("/stats")) as response:
            counts = await response.json()
        # Every frame is accounted for, and all but a handful are settled although we read nothing.
        assert counts["frames_received"] == frames
        assert counts["frames_in_flight"] <= 3, counts
        assert counts["frames_superseded"] > 0
        buffered = sum(session.ws.unsent_bytes for session in server.app[SESSIONS])
        assert buffered < 4 * 1024 * 1024, f"server buffered {buffered} bytes for a non-reading client"
        # Reading again: the newest frame is the last to arrive.
        last = None
        while last is None or last.seq != frames - 1:
            last = await receive(ws)
            assert isinstance(last, ProcessedFrame)


async def test_source_face_switches_off_passthrough(start_server, http, frame_jpeg):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=0.0))
        await receive(ws)
        await send_json(ws, SourceFace(image=media.jpeg(media.group_photo(200, 150))))
        confirmation = await receive(ws)
        assert confirmation == SourceFaceConfirmation(status="success", message="Source face set")
        await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=1.0))
        await receive(ws)
        counts = (await stats_of(ws))["client"]
    assert counts["frames_processed"] == 2
    assert counts["frames_passthrough"] == 1
