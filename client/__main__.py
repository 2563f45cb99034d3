"""`python -m client`: stream a camera (or file) to a facestream server and show the result.

This is the only place that prints: the summary, `--stats` and `--list-cameras` go to
stdout, and every failure a user can cause or meet becomes one `error: ...` line on stderr
with a non-zero exit status (2 for a bad command line, 1 for the rest), never a traceback.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Any, Coroutine, TypeVar

from .cli import parse_config
from .config import ClientConfig
from .connection import StreamClient, fetch_stats
from .display import Display, Recorder
from .errors import ClientError, UsageError
from .sources import MAX_CAMERA_INDEX, list_cameras, open_source
from .video_job import VideoJob
from .virtualcam import VirtualCamera

log = logging.getLogger("client")

T = TypeVar("T")
EXIT_INTERRUPTED = 130


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop roughly doubles WebSocket message throughput; asyncio's own loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with uvloop when available (asyncio.Runner's loop_factory needs 3.11)."""
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _run_until_signalled(client: StreamClient | VideoJob) -> Any:
    """Ctrl-C and SIGTERM stop the stream gracefully (the summary still prints)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, client.stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows: KeyboardInterrupt instead
            pass
    try:
        return await client.run()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _read_face(config: ClientConfig) -> bytes:
    assert config.source is not None
    try:
        return config.source.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read source face {config.source}: {exc.strerror or exc}") from None


def stream(config: ClientConfig) -> int:
    face = _read_face(config)
    display = Display(config.headless)
    source = open_source(
        camera_index=config.camera_index,
        input_path=config.input_path,
        synthetic=config.synthetic,
        width=config.width,
        height=config.height,
        fps=config.fps,
        loop=config.loop,
    )
    client: StreamClient | None = None
    try:
        if config.record is not None:
            display.recorder = Recorder(config.record, config.width, config.height, config.fps, config.crf, config.preset)
        if config.virtual_cam:
            display.virtual_cam = VirtualCamera.open(config.virtual_cam_device, config.width, config.height,
                                                     config.fps, config.virtual_cam_fallback)
        log.info("streaming %s to %s (%s, %d in flight)", source.description, config.server_url,
                 "binary" if config.binary else "JSON", config.in_flight)
        client = StreamClient(config, source, display, face)
        try:
            run_loop(_run_until_signalled(client))
        except KeyboardInterrupt:  # where signal handlers cannot be installed
            pass
        print(client.summary(), flush=True)
        return 0
    finally:
        display.close()
        source.close()


def run_job(config: ClientConfig) -> int:
    face = _read_face(config)
    log.info("swapping every frame of %s into %s on %s", config.input_path, config.output, config.server_url)
    result = run_loop(_run_until_signalled(VideoJob(config, face)))
    print(result.summary(str(config.output)), flush=True)
    return 0 if result.complete else EXIT_INTERRUPTED


def print_cameras() -> None:
    cameras = list_cameras()
    if not cameras:
        print(f"No camera found (OpenCV tried indices 0 to {MAX_CAMERA_INDEX - 1}).", flush=True)
    for index, width, height in cameras:
        print(f"{index}: {width}x{height}  (--camera-index {index})", flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    logging.basicConfig(level=config.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if config.insecure and config.server_url.startswith("wss://"):
        log.warning("--insecure: the server's certificate is NOT checked; anyone on the path can read the stream")
    try:
        if config.list_cameras:
            print_cameras()
            return 0
        if config.stats_only:
            print(json.dumps(run_loop(fetch_stats(config)), indent=2, sort_keys=True), flush=True)
            return 0
        return run_job(config) if config.output is not None else stream(config)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
