"""Every kind of bad input gets an `error` with a code, is counted, and the connection lives on."""
from __future__ import annotations

import struct

import aiohttp
import pytest

from protocol import Error, Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation, encode_binary
from models.frame import Passthrough
from tests import media
from tests.server.gate import GATHERING
from tests.server.test_streaming import assert_accounted, stats_of
from tests.server.wsclient import receive, send, send_json


async def assert_still_serves(ws: aiohttp.ClientWebSocketResponse, frame_jpeg: bytes) -> None:
    await send_json(ws, Frame(jpeg=frame_jpeg, timestamp=42.0, seq=4242))
    reply = await receive(ws)
    assert isinstance(reply, ProcessedFrame) and reply.seq == 4242


BAD_TEXT = [
    ("{not json", "bad_json", None),
    ("[]", "bad_json", None),
    ('{"type": "teleport"}', "unknown_type", None),
    ('{"data": "AAAA"}', "missing_field", None),
    ('{"type": "frame", "timestamp": 1.0, "seq": 3}', "missing_field", 3),
    ('{"type": "frame", "data": "%%%", "seq": 4}', "invalid_base64", 4),
    ('{"type": "frame", "data": "AAAA", "seq": 5}', "bad_image", 5),  # base64 of zeros: not a JPEG
    ('{"type": "frame", "data": "/9j/AAAA", "seq": 6}', "bad_image", 6),  # JPEG magic, garbage after
    ('{"type": "processed_frame", "data": "AAAA", "timestamp": 1}', "unexpected_message", None),
]


@pytest.mark.parametrize("text, code, seq", BAD_TEXT, ids=[c for _, c, _ in BAD_TEXT])
async def test_bad_json_messages(start_server, http, frame_jpeg, text, code, seq):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await ws.send_str(text)
        error = await receive(ws)
        assert isinstance(error, Error), error
        assert (error.code, error.seq) == (code, seq)
        assert error.message
        await assert_still_serves(ws, frame_jpeg)
        counts = await stats_of(ws)
    assert counts["errors"][code] == 1
    assert_accounted(counts)


BAD_BINARY = [
    (b"\x01\x01\x00", "bad_header"),
    (struct.pack("<BBHId", 9, 1, 0, 1, 0.0) + b"x", "unsupported_version"),
    (struct.pack("<BBHId", 1, 77, 0, 1, 0.0) + b"x", "bad_header"),
    (struct.pack("<BBHId", 1, 1, 0, 1, 0.0) + b"not a jpeg", "bad_image"),
    (struct.pack("<BBHId", 1, 1, 0, 1, 0.0), "bad_image"),
]


@pytest.mark.parametrize("data, code", BAD_BINARY, ids=[f"{c}-{i}" for i, (_, c) in enumerate(BAD_BINARY)])
async def test_bad_binary_messages(start_server, http, frame_jpeg, data, code):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await ws.send_bytes(data)
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == code, error
        await assert_still_serves(ws, frame_jpeg)
        counts = await stats_of(ws)
    assert_accounted(counts)
    broken_frame = len(data) >= 16 and data[1] == 1  # a frame's header that could be read: counted
    assert counts["frames_received"] == 1 + broken_frame


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
async def test_image_over_the_pixel_limit(start_server, http, frame_jpeg, binary):
    server = await start_server(max_image_pixels=320 * 240)
    async with http.ws_connect(server.make_url("/")) as ws:
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=1.0, seq=9), binary)
        error = await receive(ws)
        assert isinstance(error, Error) and (error.code, error.seq) == ("image_too_large", 9)
        assert "640x480" in error.message
        small = media.jpeg(media.group_photo(320, 240))
        await send(ws, Frame(jpeg=small, timestamp=2.0, seq=10), binary)
        assert (await receive(ws)).seq == 10


@pytest.mark.parametrize(
    "image", [b"GIF89a....", media.jpeg(media.group_photo())[:300], b"\x89PNG\r\n\x1a\n" + b"\x00" * 30],
    ids=["not-an-image", "truncated-jpeg", "broken-png"],
)
async def test_bad_source_face_is_refused_and_frames_still_flow(start_server, http, frame_jpeg, image):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await send_json(ws, SourceFace(image=image))
        confirmation = await receive(ws)
        assert isinstance(confirmation, SourceFaceConfirmation)
        assert confirmation.status == "error" and confirmation.message
        await assert_still_serves(ws, frame_jpeg)


async def test_message_over_the_size_limit_closes_with_1009(start_server, http, frame_jpeg):
    server = await start_server(max_message_bytes=len(frame_jpeg) // 2)
    async with http.ws_connect(server.make_url("/")) as ws:
        await send(ws, Frame(jpeg=frame_jpeg, timestamp=1.0, seq=1), binary=True)
        message = await ws.receive(timeout=10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


class FailsOnDarkFrames(Passthrough):
    """Raises when any frame of its batch is all black: a bug that only some input triggers."""

    name = "fails_on_dark"

    def process(self, frames, contexts):
        if any(frame.max() < 10 for frame in frames):
            raise ValueError("cannot handle dark frames")
        return list(frames)


async def test_a_processor_crash_fails_only_its_frame(start_server, http, frame_jpeg, gate):
    """A batch holding a bad frame and a good one fails as a whole, is rerun frame by frame,
    and only the bad frame fails. The gate holds a third client's frame while the bad and
    the good frame wait in their mailboxes, so those two are the next batch."""
    server = await start_server(frame_processors=(gate.name, "fails_on_dark"), max_batch=8, **GATHERING,
                                processors={**gate.registry, "fails_on_dark": lambda hub: FailsOnDarkFrames()})
    dark = media.jpeg(media.group_photo() * 0)
    async with http.ws_connect(server.make_url("/")) as bad, http.ws_connect(server.make_url("/")) as good, \
            http.ws_connect(server.make_url("/")) as opener:
        await send(opener, Frame(jpeg=frame_jpeg, timestamp=3.0, seq=0), binary=True)
        await gate.holding()
        for round_ in range(5):
            await send(bad, Frame(jpeg=dark, timestamp=1.0, seq=round_), binary=True)
            await send(good, Frame(jpeg=frame_jpeg, timestamp=2.0, seq=round_), binary=True)
            if round_ == 0:
                for ws in (bad, good):
                    await stats_of(ws)  # answered once its frame was read: it waits in the mailbox
                gate.open()
                assert isinstance(await receive(opener), ProcessedFrame)
            error, reply = await receive(bad), await receive(good)
            assert isinstance(error, Error) and (error.code, error.seq) == ("processing_failed", round_)
            assert isinstance(reply, ProcessedFrame) and reply.seq == round_
        counts = await stats_of(good)
    [opener_id], together, *retried = gate.batches[:4]
    assert len(set(together)) == 2 and opener_id not in together, gate.batches
    assert retried == [[client] for client in together], "the failed batch is rerun frame by frame"
    assert counts["frames_failed"] == 5 and counts["frames_processed"] == 6
    assert_accounted(counts)


async def test_binary_source_face_is_confirmed_in_json(start_server, http):
    server = await start_server()
    async with http.ws_connect(server.make_url("/")) as ws:
        await ws.send_bytes(encode_binary(SourceFace(image=media.jpeg(media.group_photo(120, 90)))))
        raw = await ws.receive(timeout=20)
        assert raw.type == aiohttp.WSMsgType.TEXT
        assert '"source_face_confirmation"' in raw.data
