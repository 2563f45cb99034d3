"""`python -m client --input in.mp4 --output out.mp4`: a video file through the server as a job.

The connection offers the `facestream.job` subprotocol (docs/protocol.md, "Jobs"): the
server queues every frame in order instead of keeping the newest, and answers each, in
order. This shell reads the file (`media.VideoReader`), keeps `JOB_WINDOW` frames out
(`job_ledger.JobLedger` keeps the books), writes the answers with the input's timestamps and
sound (`media.VideoWriter`), and shows progress. A dropped connection or a restarted server
is reconnected as the live stream's are (`reconnect.ReconnectPolicy`), and the job goes on
from the frames not yet answered. Ctrl-C stops it with a playable file of what was done.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import aiohttp
import av
from tqdm import tqdm

from protocol import JOB, Error, Frame, ProcessedFrame, SourceFace, SourceFaceConfirmation

from .config import ClientConfig
from .controls import LiveControls
from .errors import ConnectError, SourceFaceRejected
from .exchange import ConnectionEnded, NoReply, ask
from .images import decode_jpeg, encode_jpeg
from .job_ledger import JobLedger, SentFrame, Writable
from .media import Picture, VideoReader, VideoWriter
from .reconnect import reconnect_policy
from .transport import close_description, connect, decode_message, send_message, sleep_unless_stopped

log = logging.getLogger(__name__)

JOB_WINDOW = 16  # frames out at once: enough to fill the server's batches, well within its queue
T = TypeVar("T")


class _Dropped(Exception):
    """The connection ended before the job did."""


def _closed(ws: aiohttp.ClientWebSocketResponse) -> str:
    return close_description(ws, aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))


@dataclass
class JobResult:
    written: int
    unprocessed: int
    complete: bool
    seconds: float
    reconnects: int

    def summary(self, output: str) -> str:
        state = "done" if self.complete else "stopped early (the file is playable)"
        fps = self.written / self.seconds if self.seconds > 0 else 0.0
        unprocessed = f", {self.unprocessed} written unswapped (the server failed them)" if self.unprocessed else ""
        return (f"{output}: {state}: {self.written} frames in {self.seconds:.1f} s ({fps:.1f} frames/s){unprocessed}, "
                f"{self.reconnects} reconnects")


class VideoJob:
    def __init__(self, config: ClientConfig, face: bytes) -> None:
        assert config.input_path is not None and config.output is not None
        self.config = config
        self.face = face
        self.ledger = JobLedger(JOB_WINDOW)
        self._stop = asyncio.Event()
        self._room = asyncio.Event()  # the window has room again
        self._finished = asyncio.Event()  # every frame of the file is written
        self._input_ended = False
        self._reading = ThreadPoolExecutor(1, thread_name_prefix="job-read")
        self._writing = ThreadPoolExecutor(1, thread_name_prefix="job-write")
        self._next_item: asyncio.Future[Any] | None = None  # survives a dropped connection
        self.reconnects = 0

    def stop(self) -> None:
        self._stop.set()

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def run(self) -> JobResult:
        started = time.monotonic()
        reader = await self._in(self._reading, VideoReader, self.config.input_path)
        writer: VideoWriter | None = None
        try:
            writer = await self._in(self._writing, VideoWriter.like, self.config.output, reader,
                                    self.config.crf, self.config.preset)
            items = iter(reader)
            with tqdm(total=reader.frame_count, unit="frame", desc=self.config.output.name, dynamic_ncols=True) as bar:
                await self._connect_loop(items, writer, bar)
        finally:
            complete = self._finished.is_set()
            if writer is not None:
                await self._in(self._writing, writer.close, complete)
            await self._in(self._reading, reader.close)
            self._reading.shutdown()
            self._writing.shutdown()
        return JobResult(self.ledger.written, self.ledger.unprocessed, complete, time.monotonic() - started,
                         self.reconnects)

    # ---- connections ------------------------------------------------------------
    async def _connect_loop(self, items: Any, writer: VideoWriter, bar: tqdm) -> None:
        policy = reconnect_policy(self.config)
        async with aiohttp.ClientSession() as http:
            while not (self._stop.is_set() or self._finished.is_set()):
                ws = await connect(http, self.config, policy, self._stop, protocols=(JOB,))
                if ws is None:
                    return  # stopped while connecting
                confirmed = False
                written_before = self.ledger.written
                try:
                    if ws.protocol != JOB:
                        raise ConnectError(f"{self.config.server_url} does not take video jobs (a facestream server "
                                           "older than jobs, or another server): stream the file live without --output")
                    await self._confirm_source(ws)
                    confirmed = True
                    if policy.connected():
                        self.reconnects += 1
                    await self._run_connection(ws, items, writer, bar)
                except _Dropped as exc:
                    retry = policy.ended(f"{exc}; resuming from frame {self.ledger.next_to_write}",
                                         delivered=self.ledger.written > written_before,
                                         unconfirmed=None if confirmed else str(exc))
                    log.warning("%s", retry.note)
                    await sleep_unless_stopped(self._stop, retry.delay_s)
                finally:
                    await ws.close()

    async def _run_connection(self, ws: aiohttp.ClientWebSocketResponse, items: Any, writer: VideoWriter,
                              bar: tqdm) -> None:
        await send_message(ws, LiveControls(self.config.options).on_connect(), binary=False)
        for frame in self.ledger.to_resend():
            await self._send(ws, frame)
        sender = asyncio.create_task(self._send_loop(ws, items, writer))
        tasks = {sender, asyncio.create_task(self._receive_loop(ws, writer, bar)),
                 asyncio.create_task(self._stop.wait()), asyncio.create_task(self._finished.wait())}
        try:
            pending = tasks
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # _Dropped, a refusal, or a bug
                if done != {sender}:  # the sender ends with the file; the answers still come
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _confirm_source(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            answer = await ask(ws, SourceFace(image=self.face), SourceFaceConfirmation, self.config.confirm_timeout_s,
                               binary=True)
        except NoReply:
            raise _Dropped(f"no source_face_confirmation within {self.config.confirm_timeout_s:g} s") from None
        except ConnectionEnded as exc:
            raise _Dropped(f"the server closed the connection before confirming the source face ({exc})") from None
        SourceFaceRejected.unless_accepted(answer, f"source face {self.config.source}")

    # ---- frames out ---------------------------------------------------------------
    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse, items: Any, writer: VideoWriter) -> None:
        while not self._input_ended:
            while not self.ledger.can_send():
                self._room.clear()
                await self._room.wait()
            if self._next_item is None:
                self._next_item = asyncio.ensure_future(self._in(self._reading, self._read_next, items))
            item = await asyncio.shield(self._next_item)  # a drop mid-read keeps the item for the next connection
            self._next_item = None
            if item is None:
                self._input_ended = True
                self._check_finished()
            elif isinstance(item, SentFrame):
                self.ledger.sent(item)  # booked first: its answer may come before send returns
                await self._send(ws, item)
            else:
                await self._in(self._writing, writer.add_audio, item)

    def _read_next(self, items: Any) -> SentFrame | av.Packet | None:
        """The file's next picture as the frame to send, its next audio packet, or None at its end."""
        item = next(items, None)
        if isinstance(item, Picture):
            return SentFrame(item.index, encode_jpeg(item.image, self.config.quality), item.pts, item.time_s)
        return item

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, frame: SentFrame) -> None:
        try:
            # The timestamp is the frame's time in the video: the server tracks faces by it.
            await send_message(ws, Frame(jpeg=frame.jpeg, timestamp=frame.time_s, seq=frame.seq), binary=True)
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise _Dropped(f"connection lost while sending ({exc})") from None

    # ---- answers in -----------------------------------------------------------------
    async def _receive_loop(self, ws: aiohttp.ClientWebSocketResponse, writer: VideoWriter, bar: tqdm) -> None:
        async for raw in ws:
            message = decode_message(raw)
            if isinstance(message, ProcessedFrame):
                await self._write(self.ledger.answered(message.seq, message.jpeg), writer, bar)
            elif isinstance(message, Error):
                if message.seq is None:
                    log.warning("server error: %s (%s)", message.message, message.code)
                    continue
                log.warning("frame %d: %s (%s); written unswapped", message.seq, message.message, message.code)
                await self._write(self.ledger.answered(message.seq, None), writer, bar)
        raise _Dropped(f"the server closed the connection ({_closed(ws)})")

    async def _write(self, ready: list[Writable], writer: VideoWriter, bar: tqdm) -> None:
        for item in ready:
            await self._in(self._writing, self._write_one, writer, item)
            self.ledger.wrote(item)
            bar.update(1)
        if ready:
            self._room.set()
            self._check_finished()

    @staticmethod
    def _write_one(writer: VideoWriter, item: Writable) -> None:
        image = decode_jpeg(item.result) if item.result is not None else None
        if image is None:
            image = decode_jpeg(item.frame.jpeg)
        writer.write(image, item.frame.pts)

    def _check_finished(self) -> None:
        if self._input_ended and self.ledger.idle:
            self._finished.set()
