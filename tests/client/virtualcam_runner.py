"""`python -m tests.client.virtualcam_runner MODE CLIENT-ARGS...`: the real client's CLI with
pyvirtualcam's devices replaced, since no kernel module (v4l2loopback) or OBS is here.

The fakes go through pyvirtualcam's own extension point (`register_backend`), after every
built-in backend is removed, so the client runs the real `pyvirtualcam.Camera` and no real
virtual camera on the machine is ever written to. MODE:

- `record:PATH`: a backend that appends one JSON line per frame to PATH (size, pixel
  format and a hash of the pixels), and `{"closed": true}` when the camera is closed;
- `missing`: no device, answered as v4l2loopback answers it;
- `uninstalled`: `import pyvirtualcam` fails, as without the extra installed.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

BACKEND = "fake"


class RecordingBackend:
    """A pyvirtualcam backend (its `Backend` interface) that writes what it is sent to a file."""

    path: Path

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.width, self.height, self.fourcc = width, height, fourcc
        self._device = device or "/dev/video-fake"
        self._out = self.path.open("a")

    def send(self, frame: Any) -> None:
        record = {"width": self.width, "height": self.height, "fourcc": self.fourcc, "bytes": frame.size,
                  "sha1": hashlib.sha1(frame.tobytes()).hexdigest()}
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.write(json.dumps({"closed": True}) + "\n")
        self._out.close()

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> None:
        return None


class MissingDeviceBackend:
    def __init__(self, **kw: Any) -> None:
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe v4l2loopback'?")


def install(mode: str) -> None:
    if mode == "uninstalled":
        sys.modules["pyvirtualcam"] = None  # type: ignore[assignment]  # makes the import fail
        return
    import pyvirtualcam
    from pyvirtualcam import camera

    camera.BACKENDS.clear()  # never touch a real device
    if mode.startswith("record:"):
        RecordingBackend.path = Path(mode.split(":", 1)[1])
        pyvirtualcam.register_backend(BACKEND, RecordingBackend)
    elif mode == "missing":
        pyvirtualcam.register_backend(BACKEND, MissingDeviceBackend)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    install(sys.argv[1])
    from client.__main__ import main

    sys.exit(main(sys.argv[2:]))
