"""Opening ONNX Runtime sessions: the provider users asked for, batchable graphs, one session per model.

Two traps handled here. onnxruntime-gpu's `get_available_providers()` lists CUDA/TensorRT
even on a machine without a GPU, and a session asked for CUDA then silently runs on the
CPU: we check `session.get_providers()` after creating it and refuse. And stored models
often fix their batch axis to 1: we rewrite those axes as symbolic so one call serves a
whole batch, and drop initializers listed as graph inputs (old exporters) so ONNX Runtime
can constant-fold them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import onnx
import onnxruntime as ort

from .simulated import SIMULATED

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


class ProviderError(Exception):
    """The requested execution provider cannot be used on this machine."""


def provider_name(provider: str) -> str:
    """`cuda` -> `CUDAExecutionProvider`; full names pass through."""
    return PROVIDER_NAMES.get(provider.lower(), provider)


def check_provider(provider: str) -> str:
    """Fail early, naming what is installed, when the provider is not in this onnxruntime build."""
    if provider.lower() == SIMULATED:  # ours: model calls that sleep (models/simulated.py)
        return SIMULATED
    name = provider_name(provider)
    available = ort.get_available_providers()
    if name not in available:
        short = {v: k for k, v in PROVIDER_NAMES.items()}
        installed = ", ".join(f"{short.get(p, p)}" for p in available)
        hint = " (install onnxruntime-gpu for cuda/tensorrt; see the README)" if name != "CPUExecutionProvider" else ""
        raise ProviderError(f"execution provider {provider!r} is not available; installed: {installed}{hint}")
    return name


def batchable_model_bytes(path: Path, axes: Sequence[int]) -> bytes:
    """The model with the given axes of every input and output made symbolic."""
    model = onnx.load(str(path))
    graph = model.graph
    initializer_names = {init.name for init in graph.initializer}
    kept_inputs = [value for value in graph.input if value.name not in initializer_names]
    if len(kept_inputs) != len(graph.input):
        del graph.input[:]
        graph.input.extend(kept_inputs)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis in axes:
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                dims[axis].ClearField("dim_value")
                dims[axis].dim_param = f"{value.name}_axis{axis}"
    return model.SerializeToString()


@dataclass(frozen=True)
class SessionOptions:
    provider: str = "cpu"
    threads: int = 0  # intra-op threads; 0 = ONNX Runtime's default
    device: int = 0  # accelerator index (ignored by the CPU provider)


def open_session(path: Path, options: SessionOptions, batch_axes: Sequence[int] = (0,)) -> ort.InferenceSession:
    name = check_provider(options.provider)
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.log_severity_level = 3  # our own logs say what matters
    # Idle ONNX Runtime threads spin by default, burning the cores that decode and encode
    # the next batch; measured here: half the CPU per frame with spinning off.
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ONNX Runtime's CPU arena keeps every peak it has seen; with batches of changing shape
    # it crept up by ~70 MB over a one-minute soak here, without it RSS stays flat (same fps).
    session_options.enable_cpu_mem_arena = False
    if options.threads:
        session_options.intra_op_num_threads = options.threads
    if name == "CPUExecutionProvider":
        providers: list = [name]
    else:
        providers = [(name, {"device_id": str(options.device)}), "CPUExecutionProvider"]
    session = ort.InferenceSession(batchable_model_bytes(path, batch_axes), session_options, providers=providers)
    active = session.get_providers()
    if active[0] != name:
        raise ProviderError(
            f"{path.name}: asked for {name} but ONNX Runtime runs it on {active[0]} "
            "(no usable device or driver; check `nvidia-smi` and the CUDA/cuDNN versions onnxruntime-gpu needs)"
        )
    log.info("loaded %s on %s", path.name, active[0])
    return session


class SessionCache:
    """One session per (model file, options), shared by every client and every processor."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, SessionOptions], Any] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, options: SessionOptions, batch_axes: Sequence[int] = (0,),
            opener: Callable[[Path, SessionOptions, Sequence[int]], Any] | None = None) -> Any:
        """The session for `path`; `opener` makes it the first time (default: `open_session`)."""
        key = (str(path), options)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = (opener or open_session)(path, options, batch_axes)
            return session

