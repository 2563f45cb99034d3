"""Command line of `python -m client`, accepting the original Deep-Live-Cam client's spellings.

Validation that needs the file system (the source face exists, the CA file exists) happens
here, before anything opens a camera or a socket, and fails with one line, not a traceback.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable, Sequence, TypeVar
from urllib.parse import urlsplit

from protocol.options import Option

from .config import DEFAULT_SERVER_URL, TRANSPORTS, ClientConfig
from .errors import UsageError
from .media import X264_PRESETS
from .options import FLAGS
from .virtualcam import FALLBACKS

TOKEN_ENV = "FACESTREAM_TOKEN"


Number = TypeVar("Number", int, float)


def positive(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    """An argparse type: `kind` (int or float) parsed from the text, and above 0."""
    def parse(text: str) -> Number:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def non_negative(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    """An argparse type: `kind` (int or float) parsed from the text, and at least 0."""
    def parse(text: str) -> Number:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
        return value
    return parse


def _in_range(option: Option) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if option.clamp(value) != value:
            raise argparse.ArgumentTypeError(f"must be from {option.low:g} to {option.high:g}, got {text}")
        return value

    return parse


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per live option this client offers (`--many-faces/--no-many-faces`, `--opacity 0..1`,
    ...); unset flags are not sent, so the server's defaults apply."""
    group = parser.add_argument_group(
        "swap options", "starting values of the live options, sent after every (re)connect; in the window, "
        "keys change them (h lists the keys); unset: the server's defaults")
    for option in FLAGS:
        if option.kind == "switch":
            group.add_argument(option.flag, dest=f"option_{option.name}", action=argparse.BooleanOptionalAction,
                               default=None, help=option.help)
        elif option.kind in ("choice", "set"):  # the server judges: its choices may be what it has loaded
            group.add_argument(option.flag, dest=f"option_{option.name}", default=None, help=option.help,
                               metavar="|".join(option.choices) or "NAME", nargs="*" if option.kind == "set" else None)
        else:
            group.add_argument(option.flag, dest=f"option_{option.name}", type=_in_range(option), default=None,
                               metavar=option.range, help=option.help)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the meaningless ones (None, False) of optional paths and flags."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    defaults = ClientConfig()
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="facestream client: streams your camera (or a video, an image, a test pattern) to a "
        "facestream server and shows the frames that come back with your source face swapped in. "
        "At most --in-flight frames are unanswered at any time; while the server is busy, new camera "
        "frames are skipped rather than queued, so what you see is never more than that many frames old. "
        "If the server goes away the client reconnects with exponential backoff and sends the source "
        "face again. Ctrl-C (or q/Esc in the window) stops and prints a one-line summary. In the window, "
        "keys change the swap options live (h lists them); --virtual-cam sends the result to a webcam "
        "that video-call apps can pick.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-s", "--source", type=Path, metavar="PATH",
                        help="the face to wear (JPEG or PNG); required unless --stats or --list-cameras")

    net = parser.add_argument_group("server")
    net.add_argument("--server-url", default=DEFAULT_SERVER_URL, metavar="URL", help="ws://HOST:PORT or wss://HOST:PORT")
    net.add_argument("--ca-file", type=Path, metavar="PEM", help="trust this CA (or self-signed) certificate for wss://")
    net.add_argument("--insecure", action="store_true",
                     help="wss:// without checking the certificate at all (testing only; warns)")
    net.add_argument("--token", metavar="TOKEN",
                     help=f"access token, sent as 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV} if set)")
    net.add_argument("--transport", choices=TRANSPORTS, default=defaults.transport,
                     help="websocket: JPEG frames over the WebSocket (any server, proxies that pass WebSockets); "
                          "webrtc: VP8/H.264 video over UDP (a fraction of the bytes, no stall behind a lost "
                          "packet; the server's POST /whip, with its --ice-server list for NAT)")
    net.add_argument("--binary", action="store_true",
                     help="send frames as binary messages (raw JPEG, ~1/3 smaller); JSON with base64 otherwise")
    net.add_argument("--connect-timeout", metavar="SECONDS", type=positive(float), default=defaults.connect_timeout_s,
                     help="seconds to wait for one connection attempt")
    net.add_argument("--connect-retries", metavar="N", type=non_negative(int), default=defaults.connect_retries,
                     help="retries of the first connection before giving up (after the first success the "
                     "client retries forever)")
    net.add_argument("--reconnect-max", metavar="SECONDS", type=positive(float), default=defaults.reconnect_max_s,
                     help="longest wait between reconnect attempts, in seconds")
    net.add_argument("--stats", action="store_true", help="print the server's statistics once and exit")

    src = parser.add_argument_group("frames")
    src.add_argument("--camera-index", metavar="N", type=int, default=defaults.camera_index,
                     help="OpenCV camera to stream (--list-cameras shows them)")
    src.add_argument("--list-cameras", action="store_true",
                     help="print the cameras OpenCV can open (index and resolution) and exit")
    src.add_argument("--input", type=Path, dest="input_path", metavar="FILE",
                     help="stream this video file (or a still image, repeated) instead of the camera")
    src.add_argument("--loop", action="store_true", help="play --input video again from the start when it ends")
    src.add_argument("--synthetic", action="store_true",
                     help="stream a generated test pattern instead of the camera (no camera needed)")
    src.add_argument("--width", metavar="PX", type=positive(int), default=defaults.width, help="frame width sent")
    src.add_argument("--height", metavar="PX", type=positive(int), default=defaults.height, help="frame height sent")
    src.add_argument("--fps", metavar="FPS", type=positive(float), default=defaults.fps,
                     help="frames per second read from the source (a camera may round it)")
    src.add_argument("--quality", type=int, default=defaults.quality, choices=range(1, 101), metavar="1..100",
                     help="JPEG quality of the frames sent")
    src.add_argument("--in-flight", metavar="K", type=positive(int), default=defaults.in_flight,
                     help="most frames sent and not yet answered; frames beyond are skipped")
    src.add_argument("--no-pacing", dest="pacing", action="store_false",
                     help="ignore the server's pacing: send whenever the --in-flight window has room (by default a "
                          "server that paces its clients says when it can take the next frame, and frames go "
                          "then, one at a time, so they do not wait behind each other)")
    src.add_argument("--frame-timeout", metavar="SECONDS", type=positive(float), default=defaults.frame_timeout_s,
                     help="seconds after which an unanswered frame no longer counts as in flight")

    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="show no window (servers, CI, tests)")
    out.add_argument("--max-frames", metavar="N", type=positive(int), help="stop after this many processed frames")
    out.add_argument("--record", type=Path, metavar="OUT.mp4",
                     help="write the processed stream to this video file (H.264, at the pace frames came back)")
    out.add_argument("--output", type=Path, metavar="OUT.mp4",
                     help="with --input VIDEO: swap every frame of the file, in order and as fast as the server "
                     "can go (live clients first), into this file (H.264, the input's timing and sound kept; any "
                     "container FFmpeg writes); progress is shown, Ctrl-C leaves a playable file of what was done, "
                     "and a dropped connection resumes where it was")
    out.add_argument("--crf", type=int, default=defaults.crf, choices=range(0, 52), metavar="0..51",
                     help="the H.264 quality of --output and --record: lower is better and bigger (18 looks "
                     "lossless, 23 is x264's default)")
    out.add_argument("--preset", choices=X264_PRESETS, default=defaults.preset,
                     help="the x264 preset of --output and --record: slower ones make smaller files for more CPU")
    out.add_argument("--virtual-cam", nargs="?", const="", default=None, metavar="DEVICE",
                     help="send the processed stream to a virtual webcam for video calls (needs pip install "
                     ".[virtualcam]; v4l2loopback on Linux, the OBS virtual camera on Windows and macOS); "
                     "DEVICE picks one (e.g. /dev/video10), default: the first found")
    out.add_argument("--virtual-cam-fallback", choices=FALLBACKS, default=defaults.virtual_cam_fallback,
                     help="what the virtual camera shows while no processed frames come (start-up, reconnects): "
                     "the last processed frame, or the raw camera picture (your own face)")
    out.add_argument("--log-level", default=defaults.log_level, type=str.upper,
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _add_option_flags(parser)
    return parser


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--server-url must look like ws://HOST:PORT or wss://HOST:PORT, got {url!r}")


def parse_config(argv: Sequence[str] | None = None) -> ClientConfig:
    """Parse and check the command line; raises `UsageError` with one line for bad paths."""
    args = build_parser().parse_args(argv)
    _check_url(args.server_url)
    if not (args.stats or args.list_cameras):
        if args.source is None:
            raise UsageError("the source face is required: -s/--source PATH (or use --stats)")
        if not args.source.is_file():
            raise UsageError(f"Source face not found: {args.source}")
    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError(f"CA file not found: {args.ca_file}")
    if args.input_path is not None and not args.input_path.is_file():
        raise UsageError(f"Input file not found: {args.input_path}")
    if args.output is not None:
        if args.input_path is None:
            raise UsageError("--output needs --input VIDEO: the file whose every frame is swapped")
        if args.loop or args.record is not None:
            raise UsageError("--output writes every frame of --input once: it takes neither --loop nor --record")
        if args.output.resolve() == args.input_path.resolve():
            raise UsageError("--output must not be the --input file")
        if args.transport != "websocket":
            raise UsageError("--output runs as a job over the WebSocket: it takes no --transport webrtc "
                             "(WebRTC drops frames to stay live; a job wants every one)")
    return ClientConfig(
        source=args.source,
        server_url=args.server_url,
        ca_file=args.ca_file,
        insecure=args.insecure,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        transport=args.transport,
        binary=args.binary,
        camera_index=args.camera_index,
        input_path=args.input_path,
        loop=args.loop,
        synthetic=args.synthetic,
        width=args.width,
        height=args.height,
        fps=args.fps,
        quality=args.quality,
        in_flight=args.in_flight,
        pacing=args.pacing,
        frame_timeout_s=args.frame_timeout,
        headless=args.headless,
        max_frames=args.max_frames,
        record=args.record,
        output=args.output,
        crf=args.crf,
        preset=args.preset,
        virtual_cam=args.virtual_cam is not None,
        virtual_cam_device=args.virtual_cam or None,
        virtual_cam_fallback=args.virtual_cam_fallback,
        options={option.name: value for option in FLAGS
                 if (value := getattr(args, f"option_{option.name}")) is not None},
        stats_only=args.stats,
        list_cameras=args.list_cameras,
        connect_timeout_s=args.connect_timeout,
        connect_retries=args.connect_retries,
        reconnect_max_s=args.reconnect_max,
        log_level=args.log_level,
    )
