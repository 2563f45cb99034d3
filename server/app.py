"""The aiohttp application: WebSocket endpoint at `/`, WebRTC signalling at `/whip`, the web
page (and `/options`, the live options it builds its controls from), `/stats`, `/metrics`,
`/healthz`, `/readyz` and `POST /admin/drain`.

Both transports admit a client the same way (token, origin, drain, `--max-clients`, counted
together), give it a `SessionCore` on the least loaded device, and register it in `SESSIONS`,
where the drain, the idle watch and the shutdown find it.

`create_app(config)` is the only way in; tests and the CLI share it (tests may give it a
registry of processors of their own besides `models.choice.PROCESSORS`). Long-lived resources
(thread pools, one batcher and set of processors per device) live in `cleanup_ctx` and in
`app[...]` keys.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Callable, Mapping

from aiohttp import WSCloseCode, WSMsgType, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from protocol import JOB, PACING, options
from protocol.webrtc import WHIP_PATH

from models.choice import PROCESSORS, ProcessorFactory, build_processors
from models.device import ModelDevice
from models.host import HostPool

from .batcher import Batcher
from .config import ServerConfig
from .devices import Device, least_loaded
from .drain import Drain
from .jpeg import JpegCodec
from .client_socket import ClientWebSocket
from .memory import release_freed_memory
from .pipeline import Pipeline
from .connections import ConnectionGate, guard, handler_args
from .security import (
    AIOHTTP_LOGGERS,
    OriginPolicy,
    RedactTokens,
    TokenStore,
    access_middleware,
    check_upgrade,
    is_loopback,
)
from .scheduler import Scheduler
from . import whip
from .session import ClientSession, Preparers
from .session_core import SessionCore, SessionLimits
from .stats import ServerStats
from .webrtc_session import PeerSession, video_frame

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).parent / "web"  # the browser client, served as package data
STATIC_PREFIX = "/static/"

CONFIG = web.AppKey("config", ServerConfig)
PROCESSOR_FACTORIES = web.AppKey("processor_factories", Mapping)  # what --frame-processor names make
STATS = web.AppKey("stats", ServerStats)
DEVICES = web.AppKey("devices", list)
WORKERS = web.AppKey("workers", ThreadPoolExecutor)
PREPARERS = web.AppKey("preparers", ThreadPoolExecutor)  # source photos: never in the batches' way
SESSIONS = web.AppKey("sessions", set)  # every client, WebSocket and WebRTC
PEERS = web.AppKey("peers", dict)  # WebRTC session id -> PeerSession
CLIENT_IDS = web.AppKey("client_ids", itertools.count)
TOKENS = web.AppKey("tokens", TokenStore)
DRAIN = web.AppKey("drain", Drain)
READY = web.AppKey("ready", asyncio.Event)
GATE = web.AppKey("gate", ConnectionGate)
ORIGINS = web.AppKey("origins", OriginPolicy)
OPTION_TABLE = web.AppKey("option_table", dict)  # the live options as this server offers them (options.for_server)
CLIENT_DEFAULTS = web.AppKey("client_defaults", dict)  # a new client's options: the table's, then the command line's


async def _start_device(app: web.Application, index: int, host: HostPool) -> Device:
    """Models, pipeline and batcher of one device (sessions load in a worker thread)."""
    config = app[CONFIG]
    loop = asyncio.get_running_loop()
    model_device = ModelDevice(f"device {index}")
    processors = await loop.run_in_executor(app[WORKERS], build_processors, config.frame_processors,
                                            replace(config.models, device=index), model_device, host,
                                            app[PROCESSOR_FACTORIES])
    pipeline = Pipeline(
        processors=processors,
        codec=JpegCodec(quality=config.jpeg_quality, max_pixels=config.max_image_pixels),
        host=host,
    )
    scheduler: Scheduler = Scheduler(max_batch=config.max_batch, latency_target_s=config.latency_target_ms / 1000,
                                     max_in_flight=config.batches_in_flight,
                                     device_is_host=config.models.provider == "cpu")
    batcher = Batcher(pipeline, app[STATS], app[WORKERS], scheduler)
    default_sources = None
    if config.source is not None:
        default_sources = await loop.run_in_executor(app[WORKERS], pipeline.prepare_sources, config.source.read_bytes())
    batcher.start(model_device)
    log.info("device %d: frame processors %s; max batch %d, latency target %g ms", index,
             ", ".join(p.name for p in processors), config.max_batch, config.latency_target_ms)
    for option, choices in pipeline.option_choices().items():
        log.info("device %d: clients choose their %s among %s", index, option,
                 ", ".join(f"{choice} ({note})" if note else choice for choice, note in choices.items()))
    return Device(index=index, pipeline=pipeline, batcher=batcher, model_device=model_device,
                  default_sources=default_sources)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    host_pool = ThreadPoolExecutor(config.codec_threads, thread_name_prefix="host")
    app[WORKERS] = ThreadPoolExecutor(config.batches_in_flight * len(config.devices), thread_name_prefix="batch")
    app[PREPARERS] = ThreadPoolExecutor(len(config.devices), thread_name_prefix="prepare")
    devices: list[Device] = []
    app[DEVICES] = devices
    try:
        for index in config.devices:
            devices.append(await _start_device(app, index, HostPool(host_pool)))
        app[STATS].devices = devices
        pipeline = devices[0].pipeline
        app[OPTION_TABLE] = options.for_server(pipeline.option_choices(), pipeline.options_read())
        app[CLIENT_DEFAULTS] = {**options.defaults(app[OPTION_TABLE]),
                                **{name: value for name, value in config.options.items() if name in app[OPTION_TABLE]}}
        for name, value in config.options.items():
            if name not in app[OPTION_TABLE] and value != options.DEFAULT_OPTIONS[name]:
                log.warning("%s %s: only a server with %s reads it; this one runs %s", options.OPTIONS[name].flag,
                            value, options.OPTIONS[name].read_by, ", ".join(p.name for p in pipeline.processors))
        if config.source is not None:
            log.info("default source face: %s", config.source)
        housekeeping = [asyncio.create_task(_close_idle_sessions(app), name="idle-watch"),
                        asyncio.create_task(release_freed_memory(), name="malloc-trim")]
        app[READY].set()
        yield
        for task in housekeeping:
            task.cancel()
        await asyncio.gather(*housekeeping, return_exceptions=True)
        await app[DRAIN].stop()
    finally:
        for device in devices:
            await device.batcher.stop()
        app[WORKERS].shutdown(wait=True)
        app[PREPARERS].shutdown(wait=True)
        host_pool.shutdown(wait=True)


async def _close_idle_sessions(app: web.Application) -> None:
    """Disconnect clients that have sent nothing for `idle_timeout_s` (their slot is freed)."""
    timeout = app[CONFIG].idle_timeout_s
    while True:
        await asyncio.sleep(min(timeout / 4, 5.0))
        deadline = time.monotonic() - timeout
        for session in [s for s in app[SESSIONS] if s.last_activity < deadline]:
            log.info("client %d idle for %.0f s: disconnecting", session.client_id, timeout)
            await session.end(WSCloseCode.OK, "idle timeout")


async def _close_sessions(app: web.Application) -> None:
    """On shutdown: tell every client we are going away (1001), so they can reconnect elsewhere."""
    sessions = list(app[SESSIONS])
    await asyncio.gather(
        *(s.end(WSCloseCode.GOING_AWAY, "server shutting down") for s in sessions),
        return_exceptions=True,
    )


def _admit(request: web.Request) -> None:
    """A would-be client of either transport: 403 from a foreign origin, 401 without a token,
    503 while draining (so a load balancer retries another server)."""
    app = request.app
    check_upgrade(request, app[TOKENS], app[ORIGINS])
    if app[DRAIN].active:
        raise web.HTTPServiceUnavailable(text="server draining\n")


def _is_full(app: web.Application, request: web.Request) -> bool:
    full = len(app[SESSIONS]) >= app[CONFIG].max_clients
    if full:
        log.warning("refused a client from %s: %d clients connected", request.remote, len(app[SESSIONS]))
    return full


def _new_core(app: web.Application, device: Device, **fields: object) -> SessionCore:
    config = app[CONFIG]
    return SessionCore(
        client_id=next(app[CLIENT_IDS]),
        stats=app[STATS],
        limits=SessionLimits(max_fps=config.max_client_fps, max_source_bytes=config.max_source_bytes,
                             photos_per_minute=config.max_photos_per_minute),
        sources=device.default_sources,
        options=dict(app[CLIENT_DEFAULTS]),
        option_table=app[OPTION_TABLE],
        last_activity=time.monotonic(),
        **fields,  # type: ignore[arg-type]
    )


def _preparers(app: web.Application, device: Device) -> Preparers:
    loop = asyncio.get_running_loop()
    max_bytes = app[CONFIG].max_source_bytes
    return Preparers(
        sources=lambda data: loop.run_in_executor(app[PREPARERS], device.pipeline.prepare_sources, data),
        pair=lambda pair: loop.run_in_executor(app[PREPARERS], device.pipeline.prepare_pair, pair, max_bytes),
    )


def _register(app: web.Application, session: ClientSession | PeerSession, device: Device, remote: str | None) -> None:
    stats = app[STATS]
    stats.transport_clients[session.transport] += 1
    stats.clients_total += 1
    device.clients += 1
    app[SESSIONS].add(session)
    log.info("client %d connected from %s over %s (device %d)", session.client_id, remote, session.transport,
             device.index)


def _unregister(app: web.Application, session: ClientSession | PeerSession, device: Device) -> None:
    app[SESSIONS].discard(session)
    stats = app[STATS]
    stats.transport_clients[session.transport] -= 1
    device.clients -= 1


async def _websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[CONFIG]
    ws = ClientWebSocket(
        max_msg_size=config.max_message_bytes + 1,  # aiohttp refuses a message of max_msg_size itself
        compress=False,  # JPEG does not deflate; compression would only burn CPU
        heartbeat=config.heartbeat_s,
        decode_text=False,
        protocols=(PACING, JOB),  # offered by clients that follow the server's pacing, and by jobs
    )
    if not ws.can_prepare(request).ok:  # a browser opening the server's URL gets the web client
        return web.FileResponse(WEB_ROOT / "index.html")
    _admit(request)  # decided by the same handshake code that upgrades: no spelling upgrades unchecked
    await ws.prepare(request)
    app[GATE].established(request.protocol)  # a client now: --max-clients counts it, not the gate
    if _is_full(app, request):
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                       message=f"server full ({config.max_clients} clients)".encode())
        return ws
    device = least_loaded(app[DEVICES])
    core = _new_core(app, device, job=ws.ws_protocol == JOB)
    if ws.ws_protocol == PACING:
        scheduler = device.batcher.scheduler
        core.pace = lambda received_at, taken_at: scheduler.pace_s(time.monotonic(), received_at, taken_at)
    session = ClientSession(core, ws, device.batcher, _preparers(app, device))
    _register(app, session, device, request.remote)
    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle(message.type, message.data)
            elif message.type == WSMsgType.ERROR:
                log.info("client %d: %s", session.client_id, ws.exception())
    finally:
        _unregister(app, session, device)
        await session.close()
        log.info("client %d disconnected (%s)", session.client_id, core.frames.as_dict())
        await ws.linger()  # after a refused frame, so the client reads why rather than a reset
    return ws


async def _whip_offer(request: web.Request) -> web.Response:
    """POST /whip: a WebRTC client's SDP offer; 201 with the answer and its session's URL."""
    app = request.app
    config = app[CONFIG]
    _admit(request)
    offer = await whip.read_offer(request)
    if _is_full(app, request):
        raise web.HTTPServiceUnavailable(text=f"server full ({config.max_clients} clients)\n",
                                         headers={"Retry-After": "5"})
    device = least_loaded(app[DEVICES])
    core = _new_core(app, device, transport="webrtc", media_track=True, encode_result=video_frame)
    session_id = secrets.token_urlsafe(16)

    def closed(peer: PeerSession) -> None:
        app[PEERS].pop(peer.session_id, None)
        _unregister(app, peer, device)
        log.info("client %d disconnected (%s)", peer.client_id, peer.core.frames.as_dict())

    pc = RTCPeerConnection(whip.rtc_configuration(config.ice_servers))
    peer = PeerSession(session_id, core, pc, device.batcher, _preparers(app, device), closed)
    app[PEERS][session_id] = peer
    _register(app, peer, device, request.remote)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001 - aiortc refuses what it cannot negotiate with various errors
        await peer.start_closing()
        raise web.HTTPBadRequest(text=f"cannot answer this offer: {exc}\n") from None
    return whip.created(pc.localDescription.sdp, session_id, config.ice_servers)


async def _whip_options(request: web.Request) -> web.Response:
    """OPTIONS /whip: the ICE servers, for a client to use before it makes its offer."""
    return whip.options(request.app[CONFIG].ice_servers)


async def _whip_delete(request: web.Request) -> web.Response:
    """DELETE /whip/<session id>: the client ends its WebRTC session; its slot is free at once."""
    app = request.app
    if not app[ORIGINS].allows(request):
        raise web.HTTPForbidden(text="origin not allowed\n")
    peer = app[PEERS].get(request.match_info["session_id"])
    if peer is None:
        raise web.HTTPNotFound(text="no such WebRTC session\n")
    await peer.end(WSCloseCode.OK, "ended by the client")
    return web.Response(status=204)


async def _options(request: web.Request) -> web.Response:
    """The live options table (protocol/options.py), for the page: a new option gets its control."""
    return web.json_response(options.as_json(request.app[CLIENT_DEFAULTS], request.app[OPTION_TABLE]))


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].snapshot())


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Readiness: models loaded and not draining; load balancers send clients only here."""
    app = request.app
    if app[DRAIN].active:
        return web.json_response({"status": "draining"}, status=503)
    if not app[READY].is_set():
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ready", "clients": len(app[SESSIONS])})


def _from_this_machine(request: web.Request) -> bool:
    """A direct request from a local program: not relayed by a proxy, not sent by a web page."""
    relayed = any(h in request.headers for h in ("Origin", "X-Forwarded-For", "Forwarded", "Via"))
    return is_loopback(request.remote or "") and not relayed


async def _drain(request: web.Request) -> web.Response:
    """POST /admin/drain: needs the token when one is set, else a request from this machine."""
    app = request.app
    if not app[TOKENS].enabled and not _from_this_machine(request):
        raise web.HTTPForbidden(text="set --token to drain through a proxy, a browser or another machine\n")
    app[DRAIN].start()
    return web.json_response({"status": "draining", "clients": len(app[SESSIONS])}, status=202)


async def _redacted_logs(app: web.Application) -> AsyncIterator[None]:
    """While the server runs, aiohttp's own log lines lose any token they would quote."""
    redacting = RedactTokens(app[TOKENS])
    loggers = [logging.getLogger(name) for name in AIOHTTP_LOGGERS]
    for logger in loggers:
        logger.addFilter(redacting)
    yield
    for logger in loggers:
        logger.removeFilter(redacting)


def _reload_tokens(tokens: TokenStore) -> None:
    if tokens.path is None:
        log.info("SIGHUP: no --token-file to reload")
        return
    tokens.reload()


async def _signal_handlers(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP re-reads the token file (and must never kill the server: without a handler it
    would); SIGUSR1 starts draining (POSIX only)."""
    loop = asyncio.get_running_loop()
    handlers = {}
    if hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = lambda: _reload_tokens(app[TOKENS])
    if hasattr(signal, "SIGUSR1"):
        handlers[signal.SIGUSR1] = app[DRAIN].start
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    yield
    for signum in handlers:
        loop.remove_signal_handler(signum)


@web.middleware
async def _unreadable_files_are_missing(request: web.Request, handler: Callable) -> web.StreamResponse:
    """aiohttp's static files answer 500 with a traceback in the log when the OS refuses the
    path (an 8,000-character name: ENAMETOOLONG); no file by such a name can exist."""
    if not request.path.startswith(STATIC_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except OSError as error:
        log.debug("static path refused by the OS: %s", error.strerror)
        raise web.HTTPNotFound() from None


def create_app(config: ServerConfig, on_drained: Callable[[], None] = lambda: None,
               processors: Mapping[str, ProcessorFactory] = PROCESSORS) -> web.Application:
    """The server; `on_drained` runs when a drain has emptied it (the CLI exits then).
    `config.frame_processors` are made from `processors` (name -> factory), on every device."""
    tokens = TokenStore(config.tokens, config.token_file)
    app = web.Application(
        client_max_size=config.max_message_bytes,
        middlewares=[access_middleware(tokens), _unreadable_files_are_missing],
        handler_args=handler_args(config.handshake_timeout_s),
    )
    app[GATE] = ConnectionGate(config.max_pending_connections)
    app[ORIGINS] = OriginPolicy.of(config.allowed_origins, config.public_urls)
    guard(app, app[GATE])
    app[CONFIG] = config
    app[PROCESSOR_FACTORIES] = processors
    app[OPTION_TABLE] = dict(options.OPTIONS)  # until the devices say what they loaded
    app[CLIENT_DEFAULTS] = dict(config.options)
    app[TOKENS] = tokens
    app[STATS] = ServerStats()
    app[SESSIONS] = set()
    app[PEERS] = {}
    app[CLIENT_IDS] = itertools.count(1)
    app[READY] = asyncio.Event()
    app[DRAIN] = Drain(app[SESSIONS], config.drain_timeout_s, on_drained)
    app.cleanup_ctx.append(_redacted_logs)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(_signal_handlers)
    app.on_shutdown.append(_close_sessions)
    app.router.add_get("/", _websocket)
    if config.webrtc:
        app.router.add_post(WHIP_PATH, _whip_offer)
        app.router.add_route("OPTIONS", WHIP_PATH, _whip_options)
        app.router.add_delete(WHIP_PATH + "/{session_id}", _whip_delete)
    app.router.add_get("/options", _options)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_post("/admin/drain", _drain)
    app.router.add_static(STATIC_PREFIX, WEB_ROOT, append_version=True)
    return app
