"""Everything `python -m client` can be told, in one immutable value.

The CLI builds it and the rest of the client only reads it, so tests (and the latency
probe) can construct a run directly without going through argparse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SERVER_URL = "ws://localhost:8765"
TRANSPORTS = ("websocket", "webrtc")


@dataclass(frozen=True)
class ClientConfig:
    source: Path | None = None  # the face to wear; required unless `stats_only`
    server_url: str = DEFAULT_SERVER_URL
    ca_file: Path | None = None
    insecure: bool = False
    token: str | None = None
    transport: str = "websocket"  # one of TRANSPORTS; webrtc: see client/webrtc_stream.py
    binary: bool = False
    camera_index: int = 0
    input_path: Path | None = None
    loop: bool = False
    synthetic: bool = False
    width: int = 640
    height: int = 480
    fps: float = 30.0
    quality: int = 85
    in_flight: int = 2
    pacing: bool = True  # offer the `facestream.pacing` subprotocol and follow the server's pace
    frame_timeout_s: float = 5.0
    headless: bool = False
    max_frames: int | None = None
    record: Path | None = None
    output: Path | None = None  # with input_path: a video job, every frame written here in order
    crf: int = 18  # the job's H.264 quality (x264's constant rate factor)
    preset: str = "veryfast"  # x264's speed/size trade-off; "medium" (its default) costs 2.5x the CPU here
    virtual_cam: bool = False
    virtual_cam_device: str | None = None  # None: the first virtual camera found
    virtual_cam_fallback: str = "last"  # what the virtual camera shows between processed frames: last | raw
    options: dict[str, Any] = field(default_factory=dict)  # starting live options; unset ones: the server's
    stats_only: bool = False
    list_cameras: bool = False
    connect_timeout_s: float = 10.0
    connect_retries: int = 3  # retries of the very first connection before giving up
    reconnect_max_s: float = 10.0  # cap of the reconnect backoff
    confirm_timeout_s: float = 60.0  # wait for source_face_confirmation (a cold face pipeline is slow)
    log_level: str = "INFO"
