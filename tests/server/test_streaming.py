"""Frames over real sockets: both modes, echoes, several clients, latest-frame-wins, slow readers."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import pytest

from protocol import Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation, Stats, StatsRequest
from server.app import SESSIONS
from tests import media
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
async def test_concurrent_clients_get_their_own_frames(start_server, http, binary):
    server = await start_server(max_batch=4)
    clients, frames_each = 4, 12

    async def run_client(index: int) -> list[ProcessedFrame]:
        image = media.numbered_frame(index)
        replies = []
        async with http.ws_connect(server.make_url("/")) as ws:
            for seq in range(frames_each):
                await send(ws, Frame(jpeg=media.jpeg(image), timestamp=float(index), seq=seq), binary)
                replies.append(await receive(ws))
        for reply in replies:
            assert_same_picture(reply.jpeg, image)
        return replies

    results = await asyncio.gather(*(run_client(i) for i in range(clients)))
    for index, replies in enumerate(results):
        assert [r.seq for r in replies] == list(range(frames_each))
        assert {r.timestamp for r in replies} == {float(index)}
    async with http.ws_connect(server.make_url("/")) as ws:
        counts = await stats_of(ws)
    assert counts["frames_processed"] == clients * frames_each
    assert counts["batches"] <= clients * frames_each
    assert_accounted(counts)


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
        buffered = sum(session.ws._writer.transport.get_write_buffer_size() for session in server.app[SESSIONS])
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
