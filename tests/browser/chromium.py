"""Debian's Chromium for the browser tests: install it with apt-get when missing, launch it headless.

Never a browser download: Playwright only drives the system's `/usr/bin/chromium`.
The install runs at most once per machine at a time: an flock serialises our own test
processes (several developers share a machine), and apt's own lock timeout makes us wait
for anyone else's apt-get instead of failing.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium",)
INSTALL_TIMEOUT_S = 900  # a first install downloads ~100 MB of packages
_LOCK = Path(tempfile.gettempdir()) / "facestream-chromium-install.lock"


class ChromiumUnavailable(RuntimeError):
    """Chromium is not installed and could not be installed here."""


def _run(argv: list[str], log: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(
        argv, check=False, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
    )
    log.append(f"$ {' '.join(argv)} -> {result.returncode}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    if result.returncode != 0:
        raise ChromiumUnavailable(f"`{' '.join(argv)}` failed")


def _as_root(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]  # -n: never prompt (there is no terminal in CI)
    raise ChromiumUnavailable("not root and no sudo: cannot run apt-get")


def ensure_chromium() -> Path:
    """Return the path of a runnable Chromium; install Debian's package if needed."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not shutil.which("apt-get"):
        raise ChromiumUnavailable(f"{CHROMIUM} is missing and this system has no apt-get; install Chromium")
    log: list[str] = []
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing it right now
        if CHROMIUM.exists():
            return CHROMIUM
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]  # wait for other apt users, do not fail
        try:
            _run(_as_root([*apt, "update", "-qq"]), log)
            _run(_as_root([*apt, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]), log)
        except (ChromiumUnavailable, subprocess.TimeoutExpired, OSError) as exc:
            raise ChromiumUnavailable(f"could not install {' '.join(PACKAGES)}: {exc}\n" + "\n".join(log)) from None
    if not CHROMIUM.exists():
        raise ChromiumUnavailable(f"apt-get installed {' '.join(PACKAGES)} but {CHROMIUM} is missing\n" + "\n".join(log))
    return CHROMIUM


def chromium_args(camera_file: Path) -> list[str]:
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
    ]


async def launch(playwright: Any, executable: Path, camera_file: Path, profile: Path, **options: Any) -> Any:
    """A fresh browser context (new user-data dir) on the system Chromium; never a downloaded browser."""
    return await playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(executable),
        headless=True,
        args=chromium_args(camera_file),
        **options,
    )


if __name__ == "__main__":  # `python -m tests.browser.chromium`: install ahead of a test run
    print(ensure_chromium())
