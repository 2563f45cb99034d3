"""The page's DOM-free JavaScript (connection.js, display.js) checked in Node: no browser needed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_page_modules_in_node():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to test server/web/*.js (Debian: apt-get install nodejs)")
    script = ROOT / "tests" / "browser" / "page_modules.mjs"
    result = subprocess.run([node, str(script)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip().endswith(", 0 failed"), result.stdout


def test_the_pages_webrtc_constants_are_the_protocols():
    """webrtc.js repeats two facts of protocol/webrtc.py (a page cannot import Python)."""
    import re

    from protocol.webrtc import CONTROL_LABEL, MAX_CHANNEL_MESSAGE_BYTES

    source = (ROOT / "server" / "web" / "webrtc.js").read_text()
    assert re.search(rf'export const CONTROL_LABEL = "{CONTROL_LABEL}";', source)
    assert re.search(rf"export const MAX_CHANNEL_MESSAGE_BYTES = {MAX_CHANNEL_MESSAGE_BYTES};", source)
