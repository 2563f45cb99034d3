"""Fixtures for driving the web client in Debian's headless Chromium with a fake camera."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import fake_camera
from perf.chromium import ChromiumUnavailable, ensure_chromium, write_y4m


def unavailable(reason: str) -> None:
    """In CI a missing browser is a failure (the test must run there); elsewhere a skip with the reason."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Python playwright is not installed (pip install -e '.[test]')")
    try:
        return ensure_chromium()
    except ChromiumUnavailable as exc:
        unavailable(f"Chromium is needed for the browser tests: {exc}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def camera_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "faces.y4m", fake_camera.frames(), fake_camera.FPS)
