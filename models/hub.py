"""The models one device runs: its settings, and the sessions and analyser its processors share.

`ModelSettings` is what `python -m server` is told about models (`--provider`,
`--models-dir`, `--detector`, ...), held whole in `ServerConfig.models`; the server gives
each of its devices a copy with that device's index. A `ModelHub` opens each model once per
device and hands it to every processor that asks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .analysis import FaceAnalyser
from .device import DeviceSession, ModelDevice
from .host import HostPool
from .landmarks import Landmarks106
from .recognizer import ArcFace
from .registry import MODELS, ModelError, announce, locate, require
from .scrfd import ScrfdDetector
from .sessions import SessionCache, SessionOptions, open_session
from .simulated import COST_TABLES, SIMULATED, SimulatedSession, cost_of

if TYPE_CHECKING:
    from .masks import FaceMasker

DETECTORS = ("scrfd", "centerface")


@dataclass(frozen=True)
class ModelSettings:
    """How models are found and run (the server's model flags)."""

    provider: str = "cpu"  # an ONNX Runtime execution provider, or "simulated"
    threads: int = 0  # per ONNX Runtime session; 0: the runtime's own default
    models_dir: Path | None = None  # searched first for model files (see `python -m models list`)
    detector: str = "scrfd"  # one of DETECTORS
    det_size: int = 320  # the detector's input: a frame's longer side, in pixels
    detect_every: int = 1  # measured: on the CPU the detector costs less than the tracking it saves
    hold_frames: int = 3  # keep swapping a face the detector lost for this many frames
    device: int = 0  # GPU index for cuda/tensorrt/rocm, set per device; CPU "devices" share the CPU
    simulated_device: str = "h100"  # the cost table of `provider="simulated"` (models/simulated.py)
    face_occluder: str | None = None  # the occlusion mask's model(s): a key of models/masks.py's OCCLUDERS
    face_parser: str | None = None  # the region mask's model: one of models/masks.py's PARSERS


class ModelHub:
    """Sessions and analysers shared by all processors (and all clients) of one device.

    Every session it opens queues its calls on `device`; processors fan their host work out
    over `host`."""

    def __init__(self, settings: ModelSettings, device: ModelDevice | None = None, host: HostPool | None = None) -> None:
        self.settings = settings
        self.device = device or ModelDevice(f"device {settings.device}")
        self.host = host or HostPool()
        self.sessions = SessionCache()
        self._analyser: FaceAnalyser | None = None
        self._masker: FaceMasker | None = None

    def session(self, name: str, path: Path | None = None) -> DeviceSession:
        spec = MODELS[name]
        settings = self.settings
        options = SessionOptions(settings.provider, settings.threads, settings.device)
        opener = self._simulated_opener(name) if settings.provider == SIMULATED else None
        path = path or require(name, settings.models_dir)
        announce(spec, path)
        raw = self.sessions.get(path, options, spec.batch_axes, opener)
        return DeviceSession(raw, self.device, name)

    def _simulated_opener(self, name: str):
        table = COST_TABLES[self.settings.simulated_device]

        def open_simulated(path: Path, options: SessionOptions, batch_axes) -> SimulatedSession:
            cpu = SessionOptions("cpu", options.threads)
            try:
                cost = cost_of(table, name, path)
            except ValueError as exc:
                raise ModelError(str(exc)) from None
            return SimulatedSession(name, path, cost, open_real=lambda: open_session(path, cpu, batch_axes))

        return open_simulated

    def recognizer_name(self) -> str:
        """inswapper was trained on w600k_r50 embeddings; the embedded MobileFaceNet is the fallback."""
        return "w600k_r50" if locate(MODELS["w600k_r50"], self.settings.models_dir) else "w600k_mbf"

    @property
    def mit_only(self) -> bool:
        """`--detector centerface`: no InsightFace weights at all (no landmarks, no recognizer)."""
        return self.settings.detector == "centerface"

    @property
    def analyser(self) -> FaceAnalyser:
        if self._analyser is None:
            self._analyser = FaceAnalyser(
                detector=self._detector(),
                landmarks=None if self.mit_only else Landmarks106(self.session("2d106det"), self.host),
                recognizer=None if self.mit_only else ArcFace(self.session(self.recognizer_name()), self.host),
                detect_every=self.settings.detect_every,
                hold_frames=self.settings.hold_frames,
                host=self.host,
            )
        return self._analyser

    @property
    def masker(self) -> FaceMasker:
        """The masks of this device's face crops, with the occluder and parser the settings name
        (opened, or refused with `require`'s message, the first time a processor asks: at start-up)."""
        if self._masker is None:
            from .masks import OCCLUDERS, FaceMasker  # here: masks imports swap_models, which imports this module

            settings = self.settings
            occluder_files = OCCLUDERS[settings.face_occluder] if settings.face_occluder else ()
            occluders = [self.session(name) for name in occluder_files]
            parser = self.session(settings.face_parser) if settings.face_parser else None
            self._masker = FaceMasker(occluders, parser, self.host)
        return self._masker

    def _detector(self):
        settings = self.settings
        if settings.detector == "centerface":
            from .centerface import CenterFaceDetector

            return CenterFaceDetector(self.session("centerface"), det_size=settings.det_size, host=self.host)
        name = "det_10g" if locate(MODELS["det_10g"], settings.models_dir) else "scrfd_500m"
        return ScrfdDetector(self.session(name), det_size=settings.det_size, host=self.host)
