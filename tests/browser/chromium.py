"""Debian's Chromium for the browser tests: never a browser download, Playwright only drives
the system's `/usr/bin/chromium` (installed with apt-get by tests/system_packages.py when missing).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.system_packages import PackageUnavailable, ensure_program

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


if __name__ == "__main__":  # `python -m tests.browser.chromium`: install ahead of a test run
    print(ensure_chromium())
