"""Debian's Chromium for the browser tests and benchmarks: never a browser download, Playwright
only drives the system's `/usr/bin/chromium` (installed with apt-get by perf/system_packages.py
when missing), and the files its fake camera and microphone play.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from perf.system_packages import PackageUnavailable, ensure_program

CHROMIUM = Path("/usr/bin/chromium")
ChromiumUnavailable = PackageUnavailable


def ensure_chromium() -> Path:
    """Return the path of a runnable Chromium; install Debian's package if needed."""
    return ensure_program(CHROMIUM, ("chromium",))


def chromium_args(camera_file: Path, microphone_file: Path | None = None) -> list[str]:
    microphone = [f"--use-file-for-fake-audio-capture={microphone_file}"] if microphone_file else []
    return [
        "--headless",
        "--no-sandbox",  # we run as root in a container; Chromium's sandbox needs user namespaces
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",  # grant camera permission without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_file}",
        *microphone,
    ]


async def launch(playwright: Any, executable: Path, camera_file: Path, profile: Path,
                 microphone_file: Path | None = None, **options: Any) -> Any:
    """A fresh browser context (new user-data dir) on the system Chromium; never a downloaded browser."""
    return await playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(executable),
        headless=True,
        args=chromium_args(camera_file, microphone_file),
        **options,
    )


def write_y4m(path: Path, images: list[np.ndarray], fps: int) -> Path:
    """YUV4MPEG2, 4:2:0 (the only layout Chromium's file capture reads); BT.601 limited range like cameras."""
    height, width = images[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for image in images:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())  # Y plane, then U, then V
    return path


def write_wav(path: Path, seconds: float = 4.0, hz: float = 440.0, rate: int = 48000) -> Path:
    """A tone for Chromium's fake microphone (`--use-file-for-fake-audio-capture`, 16-bit PCM WAV)."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (12000 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


if __name__ == "__main__":  # `python -m perf.chromium`: install ahead of a test run
    print(ensure_chromium())
