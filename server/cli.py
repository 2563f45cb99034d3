"""Command line of `python -m server`, accepting the original Deep-Live-Cam spellings too."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from models.choice import PROCESSORS
from models.hub import DETECTORS, ModelSettings
from models.masks import OCCLUDERS, PARSERS
from models.sessions import ProviderError, check_provider
from models.simulated import COST_TABLES
from protocol.options import OPTIONS, OptionError, validate

from .config import IceServer, ServerConfig
from .security import parse_origin


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _device_list(text: str) -> tuple[int, ...]:
    try:
        devices = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected device indices like 0,1 — got {text!r}") from None
    if not devices or len(set(devices)) != len(devices) or min(devices) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct device indices like 0,1 — got {text!r}")
    return devices


def _ice_server(values: list[str]) -> IceServer:
    """`URL` or `URL USERNAME CREDENTIAL` (TURN)."""
    if len(values) not in (1, 3) or not values[0].startswith(("stun:", "turn:", "turns:")):
        raise ValueError(f"expected stun:HOST[:PORT] or turn:HOST[:PORT] USERNAME CREDENTIAL, got {' '.join(values)!r}")
    return IceServer(*values)


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    models = defaults.models
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="facestream server: clients stream webcam frames over WebSocket (ws://HOST:PORT/) "
        "or WebRTC (POST /whip) and get them back with their source face swapped in. Frames of all clients are batched "
        "into one model call per step; each client keeps only its newest unprocessed frame.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=defaults.host, help="address to listen on")
    parser.add_argument("--port", "--server-port", dest="port", type=int, default=defaults.port, help="TCP port")
    parser.add_argument(
        "--provider", "--execution-provider", dest="provider", default=models.provider,
        help="ONNX Runtime execution provider: cpu, cuda, tensorrt, ...; or `simulated`: model calls that take "
             "a GPU's time (--simulated-device) without using the CPU, to measure scheduling and host work here",
    )
    parser.add_argument(
        "--simulated-device", choices=sorted(COST_TABLES), default=models.simulated_device,
        help="the cost table of --provider simulated (see models/simulated.py)",
    )
    parser.add_argument(
        "--execution-threads", type=int, default=models.threads,
        help="threads per ONNX Runtime session (0: the runtime's default)",
    )
    parser.add_argument(
        "--devices", type=_device_list, default=defaults.devices, metavar="0,1,...",
        help="inference devices (GPU indices); each gets its own batcher and model sessions and new clients "
             "go to the least loaded one. With --provider cpu, several indices make virtual devices",
    )
    parser.add_argument("--max-batch", type=_positive, default=defaults.max_batch, help="most frames in one batch")
    parser.add_argument(
        "--latency-target-ms", type=_positive_float, default=defaults.latency_target_ms, metavar="MS",
        help="batches are sized from the measured cost of the device so that a batch's time from taking its frames "
             "to their results stays within this (on a CPU that means small batches, on a GPU large ones)",
    )
    parser.add_argument(
        "--batches-in-flight", type=_positive, default=defaults.batches_in_flight, metavar="N",
        help="most batches running at once; only their model calls take turns on the device, so one batch's "
             "host work overlaps another's models",
    )
    parser.add_argument(
        "-s", "--source", type=Path, default=None,
        help="default source face for clients that send none (otherwise their frames come back unchanged)",
    )
    parser.add_argument(
        "--frame-processor", nargs="+", default=list(defaults.frame_processors), choices=sorted(PROCESSORS),
        metavar="NAME",
        help="processors applied in order, e.g. `inswapper gpen_bfr_512`: a swapper, then a face enhancer; several "
             "neural swappers are each client's choice (the `swapper` option, the first the default). Names: "
             f"{', '.join(sorted(PROCESSORS))} (`python -m models list` shows each model's licence; most are "
             "non-commercial)",
    )
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="extra directory searched first for model files (see `python -m models list`)")
    parser.add_argument("--detector", choices=DETECTORS, default=models.detector,
                        help="face detector: scrfd (InsightFace weights) or centerface (MIT-licensed)")
    parser.add_argument("--det-size", type=_positive, default=models.det_size,
                        help="detector input: frames are scaled so their longer side is this many pixels")
    parser.add_argument("--detect-every", type=_positive, default=models.detect_every, metavar="K",
                        help="run the face detector on every K-th frame of a client; track faces by their "
                             "landmarks in between")
    parser.add_argument("--hold-frames", type=int, default=models.hold_frames, metavar="N",
                        help="keep swapping a face the detector lost for up to N frames (no single-frame dropouts)")
    parser.add_argument("--face-occluder", choices=sorted(OCCLUDERS), default=models.face_occluder,
                        help="the occlusion mask's model (hands, glasses, hair in front of a face are left as they "
                             "were): DeepFaceLab's XSeg, or `many`, all three (see `python -m models list`); "
                             "clients choose it with face_mask_types")
    parser.add_argument("--face-parser", choices=PARSERS, default=models.face_parser,
                        help="the region mask's model (only the face regions a client's face_mask_regions names "
                             "are swapped): a BiSeNet face parser; clients choose it with face_mask_types")
    options = parser.add_argument_group("swap options (defaults for every client; each client may change its own)")
    for option in OPTIONS.values():
        if option.server_choices:
            continue  # what the server loads decides (e.g. the swappers of --frame-processor, the first the default)
        if option.kind == "switch":
            options.add_argument(option.flag, action=argparse.BooleanOptionalAction, default=option.default,
                                 help=option.help)
        elif option.kind == "choice":
            options.add_argument(option.flag, choices=option.choices, default=option.default, help=option.help)
        elif option.kind == "set":
            options.add_argument(option.flag, nargs="*", choices=option.choices, default=option.default,
                                 help=option.help)
        else:
            options.add_argument(option.flag, type=float, default=option.default, metavar=option.range,
                                 help=option.help)
    parser.add_argument(
        "--max-message-bytes", type=_positive, default=defaults.max_message_bytes,
        help="largest WebSocket message accepted; bigger ones close the connection (1009)",
    )
    parser.add_argument(
        "--max-image-pixels", type=_positive, default=defaults.max_image_pixels,
        help="largest image (width x height) accepted; bigger ones get an image_too_large error",
    )
    security = parser.add_argument_group("security (see the README's Security section)")
    security.add_argument("--certfile", type=Path, help="TLS certificate (PEM): serve wss:// and https")
    security.add_argument("--keyfile", type=Path, help="TLS private key (PEM) for --certfile")
    security.add_argument("--token", action="append", default=[], metavar="TOKEN",
                          help="require this bearer token from clients (repeatable)")
    security.add_argument("--token-file", type=Path,
                          help="file of accepted tokens, one per line; re-read on SIGHUP")
    security.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                          help="browser origin allowed to connect, e.g. https://app.example (repeatable; "
                               "default: any; the server's own page is allowed when opened at the address it "
                               "listens on or at a --public-url)")
    security.add_argument("--public-url", action="append", default=[], metavar="URL",
                          help="a URL browsers reach this server at (its name, or a proxy in front), whose "
                               "page may connect when --allowed-origin is set (repeatable)")
    webrtc = parser.add_argument_group("WebRTC (browsers, phones and `python -m client --transport webrtc`)")
    webrtc.add_argument("--no-webrtc", dest="webrtc", action="store_false",
                        help="turn off WebRTC signalling (POST /whip); WebSocket clients only")
    webrtc.add_argument("--ice-server", action="append", nargs="+", default=[], metavar="URL",
                        help="a STUN server (URL), or a TURN server (URL USERNAME CREDENTIAL), for clients behind "
                             "NAT; repeatable; given to clients too (see the README's WebRTC section)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-clients", type=_positive, default=defaults.max_clients,
                        help="connections beyond this are closed with code 1013 (try again later)")
    limits.add_argument("--max-client-fps", type=float, default=defaults.max_client_fps,
                        help="frames a client may have processed per second; faster ones are superseded")
    limits.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s, metavar="SECONDS",
                        help="disconnect clients that send nothing for this long")
    limits.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout_s, metavar="SECONDS",
                        help="after SIGUSR1 or POST /admin/drain, close clients still connected after this long")
    limits.add_argument("--handshake-timeout", type=_positive_float, default=defaults.handshake_timeout_s,
                        metavar="SECONDS", help="close connections that have not sent a whole request by then "
                                                "(and idle keep-alive connections)")
    limits.add_argument("--max-pending-connections", type=int, default=defaults.max_pending_connections,
                        metavar="N", help="connections one address may hold that are not (yet) a client session; "
                                          "more are closed at once (0: no limit; behind a proxy, let it limit)")
    limits.add_argument("--max-source-bytes", type=_positive, default=defaults.max_source_bytes,
                        help="largest source-face image accepted")
    limits.add_argument("--max-photos-per-minute", type=_positive_float, default=defaults.max_photos_per_minute,
                        metavar="N", help="photos a client may have prepared per minute (a source face counts one, "
                                          "a face map pair two); more are refused with rate_limited")
    parser.add_argument("--jpeg-quality", type=int, default=defaults.jpeg_quality, choices=range(1, 101),
                        metavar="1..100", help="quality of the JPEGs sent back")
    parser.add_argument("--log-level", default=defaults.log_level,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
    return parser


def parse_config(argv: Sequence[str] | None = None) -> ServerConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    for path in (args.source, args.certfile, args.keyfile, args.token_file):
        if path is not None and not path.is_file():
            parser.error(f"{path} does not exist")
    for origin in (*args.allowed_origin, *args.public_url):
        if parse_origin(origin) is None:
            parser.error(f"{origin!r} is not an http(s) origin like https://app.example")
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    if args.max_client_fps <= 0 or args.idle_timeout <= 0:
        parser.error("--max-client-fps and --idle-timeout must be positive")
    try:
        ice_servers = tuple(_ice_server(values) for values in args.ice_server)
    except ValueError as exc:
        parser.error(f"--ice-server: {exc}")
    try:
        check_provider(args.provider)
        swap_options = validate({name: getattr(args, name) for name, option in OPTIONS.items()
                                 if not option.server_choices})
    except (ProviderError, OptionError) as exc:
        parser.error(str(exc))
    return ServerConfig(
        host=args.host,
        port=args.port,
        models=ModelSettings(
            provider=args.provider.lower(),
            threads=args.execution_threads,
            models_dir=args.models_dir,
            detector=args.detector,
            det_size=args.det_size,
            detect_every=args.detect_every,
            hold_frames=args.hold_frames,
            simulated_device=args.simulated_device,
            face_occluder=args.face_occluder,
            face_parser=args.face_parser,
        ),
        latency_target_ms=args.latency_target_ms,
        batches_in_flight=args.batches_in_flight,
        devices=args.devices,
        max_batch=args.max_batch,
        frame_processors=tuple(args.frame_processor),
        source=args.source,
        options=swap_options,
        max_message_bytes=args.max_message_bytes,
        max_image_pixels=args.max_image_pixels,
        jpeg_quality=args.jpeg_quality,
        log_level=args.log_level,
        certfile=args.certfile,
        keyfile=args.keyfile,
        tokens=tuple(args.token),
        token_file=args.token_file,
        allowed_origins=tuple(args.allowed_origin),
        public_urls=tuple(args.public_url),
        max_clients=args.max_clients,
        max_client_fps=args.max_client_fps,
        idle_timeout_s=args.idle_timeout,
        max_source_bytes=args.max_source_bytes,
        max_photos_per_minute=args.max_photos_per_minute,
        drain_timeout_s=args.drain_timeout,
        handshake_timeout_s=args.handshake_timeout,
        max_pending_connections=args.max_pending_connections,
        webrtc=args.webrtc,
        ice_servers=ice_servers,
    )
