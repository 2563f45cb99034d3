"""Debian packages that some tests drive (chromium, nginx, haproxy), installed with apt-get when missing.

Never a download of our own: only the distribution's packages. Installs are serialised by
an flock (several test processes may want the same package at once) and wait for other
apt users instead of failing. Services are not started by the install.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_TIMEOUT_S = 900  # a first install may download ~100 MB


class PackageUnavailable(RuntimeError):
    """The program is missing and could not be installed here."""


def _run(argv: list[str], log: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT_S)
    log.append(f"$ {' '.join(argv)} -> {result.returncode}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    if result.returncode != 0:
        raise PackageUnavailable(f"`{' '.join(argv)}` failed")


def _as_root(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]  # -n: never prompt (there is no terminal in CI)
    raise PackageUnavailable("not root and no sudo: cannot run apt-get")


class _NoServiceStarts:
    """Debian's policy-rc.d convention: while it exits 101, package installs start no daemons."""

    POLICY = Path("/usr/sbin/policy-rc.d")

    def __enter__(self) -> None:
        self.created = not self.POLICY.exists() and os.geteuid() == 0
        if self.created:
            self.POLICY.write_text("#!/bin/sh\nexit 101\n")
            self.POLICY.chmod(0o755)

    def __exit__(self, *exc: object) -> None:
        if self.created:
            self.POLICY.unlink(missing_ok=True)


def ensure_program(program: Path, packages: tuple[str, ...]) -> Path:
    """`program` once Debian's `packages` are installed (installing them if needed)."""
    if program.exists():
        return program
    if not shutil.which("apt-get"):
        raise PackageUnavailable(f"{program} is missing and this system has no apt-get; install {' '.join(packages)}")
    log: list[str] = []
    lock_path = Path(tempfile.gettempdir()) / f"facestream-apt-{program.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if program.exists():
            return program
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
        try:
            _run(_as_root([*apt, "update", "-qq"]), log)
            with _NoServiceStarts():
                _run(_as_root([*apt, "install", "-y", "-qq", "--no-install-recommends", *packages]), log)
        except (PackageUnavailable, subprocess.TimeoutExpired, OSError) as exc:
            raise PackageUnavailable(f"could not install {' '.join(packages)}: {exc}\n" + "\n".join(log)) from None
    if not program.exists():
        raise PackageUnavailable(f"installed {' '.join(packages)} but {program} is missing\n" + "\n".join(log))
    return program
