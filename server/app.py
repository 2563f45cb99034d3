"""The aiohttp application: WebSocket endpoint at `/`, plus `/stats`, `/metrics`, `/healthz`.

`create_app(config)` is the only way in; tests and the CLI share it. Long-lived resources
(thread pools, the batcher, the processors) live in `cleanup_ctx` and in `app[...]` keys.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import time
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .batcher import Batcher
from .config import ServerConfig
from .jpeg import JpegCodec
from .pipeline import Pipeline
from .processors import build_processors
from .security import TokenStore, access_middleware
from .session import ClientSession, SessionLimits
from .stats import ServerStats

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).parent / "web"  # the browser client, served as package data

CONFIG = web.AppKey("config", ServerConfig)
STATS = web.AppKey("stats", ServerStats)
PIPELINE = web.AppKey("pipeline", Pipeline)
BATCHER = web.AppKey("batcher", Batcher)
WORKERS = web.AppKey("workers", ThreadPoolExecutor)
DEFAULT_SOURCES = web.AppKey("default_sources", dict)
SESSIONS = web.AppKey("sessions", set)
CLIENT_IDS = web.AppKey("client_ids", itertools.count)
TOKENS = web.AppKey("tokens", TokenStore)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    codec_pool = ThreadPoolExecutor(config.codec_threads, thread_name_prefix="codec")
    workers = ThreadPoolExecutor(config.batches_in_flight, thread_name_prefix="batch")
    processors = await asyncio.get_running_loop().run_in_executor(workers, build_processors, config)
    pipeline = Pipeline(
        processors=processors,
        codec=JpegCodec(quality=config.jpeg_quality, max_pixels=config.max_image_pixels),
        codec_pool=codec_pool,
        device_lock=threading.Lock(),
    )
    app[PIPELINE] = pipeline
    app[WORKERS] = workers
    if config.source is not None:
        app[DEFAULT_SOURCES] = await asyncio.get_running_loop().run_in_executor(
            workers, pipeline.prepare_sources, config.source.read_bytes()
        )
        log.info("default source face: %s", config.source)
    batcher = Batcher(pipeline, app[STATS], workers, config.max_batch, config.batches_in_flight)
    app[BATCHER] = batcher
    batcher.start()
    idle_watch = asyncio.create_task(_close_idle_sessions(app), name="idle-watch")
    log.info("frame processors: %s; max batch %d", ", ".join(p.name for p in processors), config.max_batch)
    yield
    idle_watch.cancel()
    await asyncio.gather(idle_watch, return_exceptions=True)
    await batcher.stop()
    workers.shutdown(wait=True)
    codec_pool.shutdown(wait=True)


async def _close_idle_sessions(app: web.Application) -> None:
    """Disconnect clients that have sent nothing for `idle_timeout_s` (their slot is freed)."""
    timeout = app[CONFIG].idle_timeout_s
    while True:
        await asyncio.sleep(min(timeout / 4, 5.0))
        deadline = time.monotonic() - timeout
        for session in [s for s in app[SESSIONS] if s.last_activity < deadline]:
            log.info("client %d idle for %.0f s: disconnecting", session.client_id, timeout)
            await session.ws.close(code=WSCloseCode.OK, message=b"idle timeout")


async def _close_sessions(app: web.Application) -> None:
    """On shutdown: tell every client we are going away (1001), so they can reconnect elsewhere."""
    sessions = list(app[SESSIONS])
    await asyncio.gather(
        *(s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for s in sessions),
        return_exceptions=True,
    )


async def _websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[CONFIG]
    ws = web.WebSocketResponse(
        max_msg_size=config.max_message_bytes,
        compress=False,  # JPEG does not deflate; compression would only burn CPU
        heartbeat=config.heartbeat_s,
        decode_text=False,
    )
    if not ws.can_prepare(request).ok:  # a browser opening the server's URL gets the web client
        return web.FileResponse(WEB_ROOT / "index.html")
    await ws.prepare(request)
    if len(app[SESSIONS]) >= config.max_clients:
        log.warning("refused a client from %s: %d clients connected", request.remote, len(app[SESSIONS]))
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=f"server full ({config.max_clients} clients)".encode())
        return ws
    pipeline = app[PIPELINE]
    loop = asyncio.get_running_loop()
    session = ClientSession(
        client_id=next(app[CLIENT_IDS]),
        ws=ws,
        stats=app[STATS],
        batcher=app[BATCHER],
        prepare_sources=lambda data: loop.run_in_executor(app[WORKERS], pipeline.prepare_sources, data),
        default_sources=app.get(DEFAULT_SOURCES),
        default_options=dict(config.options),
        limits=SessionLimits(max_fps=config.max_client_fps, max_source_bytes=config.max_source_bytes),
    )
    stats = app[STATS]
    stats.connected_clients += 1
    stats.clients_total += 1
    app[SESSIONS].add(session)
    log.info("client %d connected from %s", session.client_id, request.remote)
    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle(message.type, message.data)
            elif message.type == WSMsgType.ERROR:
                log.info("client %d: %s", session.client_id, ws.exception())
    finally:
        app[SESSIONS].discard(session)
        stats.connected_clients -= 1
        await session.close()
        log.info("client %d disconnected (%s)", session.client_id, session.frames.as_dict())
    return ws


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].snapshot())


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _reload_tokens_on_sighup(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    if app[TOKENS].path is not None and hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, app[TOKENS].reload)
        yield
        loop.remove_signal_handler(signal.SIGHUP)
    else:
        yield


def create_app(config: ServerConfig) -> web.Application:
    tokens = TokenStore(config.tokens, config.token_file)
    app = web.Application(
        client_max_size=config.max_message_bytes,
        middlewares=[access_middleware(tokens, frozenset(config.allowed_origins))],
    )
    app[CONFIG] = config
    app[TOKENS] = tokens
    app[STATS] = ServerStats()
    app[SESSIONS] = set()
    app[CLIENT_IDS] = itertools.count(1)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_reload_tokens_on_sighup)
    app.on_shutdown.append(_close_sessions)
    app.router.add_get("/", _websocket)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_static("/static/", WEB_ROOT, append_version=True)
    return app
