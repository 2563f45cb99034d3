"""Everything the server can be told at start-up, in one immutable value.

The CLI builds it, `create_app` consumes it, and tests construct it directly, so no
option is read from globals or the environment behind the app's back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from models.hub import ModelSettings
from protocol.options import DEFAULT_OPTIONS

MAX_PIXELS_4K = 3840 * 2160


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server WebRTC peers may use to reach each other (`--ice-server`)."""

    url: str  # stun:host:port, turn:host:port?transport=udp, turns:host:443?transport=tcp
    username: str | None = None  # TURN only
    credential: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8765
    models: ModelSettings = ModelSettings()  # each of `devices` runs them with its own index
    devices: tuple[int, ...] = (0,)  # one batcher and set of model sessions per device
    max_batch: int = 8
    latency_target_ms: float = 60.0  # batches are sized so take -> results stays within this
    batches_in_flight: int = 4  # at most; only their model calls take turns on the device
    codec_threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))  # the host pool
    frame_processors: tuple[str, ...] = ("face_swapper",)
    source: Path | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))  # per-client defaults
    max_message_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = MAX_PIXELS_4K
    jpeg_quality: int = 85
    heartbeat_s: float = 30.0
    log_level: str = "INFO"
    # Security and limits.
    certfile: Path | None = None
    keyfile: Path | None = None
    tokens: tuple[str, ...] = ()
    token_file: Path | None = None
    allowed_origins: tuple[str, ...] = ()
    public_urls: tuple[str, ...] = ()  # where browsers reach this server, e.g. behind a proxy or by name
    max_clients: int = 64
    max_client_fps: float = 60.0  # frames beyond this rate are superseded, not queued
    idle_timeout_s: float = 120.0  # a client that sends nothing for this long is disconnected
    max_source_bytes: int = 10 * 1024 * 1024
    max_photos_per_minute: float = 60.0  # source faces and face-map photos a client may have prepared
    drain_timeout_s: float = 60.0  # after a drain starts, clients still connected then are closed
    handshake_timeout_s: float = 10.0  # a connection must send its request within this (and idle keep-alive)
    max_pending_connections: int = 32  # per address: connections that are not (yet) a client session; 0: no limit
    # WebRTC (POST /whip).
    webrtc: bool = True
    ice_servers: tuple[IceServer, ...] = ()
