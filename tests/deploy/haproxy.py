"""Run Debian's HAProxy on 127.0.0.1 with the project's own deploy/haproxy/haproxy.cfg
(installed with apt when missing), for the tests of that config."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from perf.system_packages import ensure_program

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = Path("/usr/sbin/haproxy")


def render(workdir: Path, listen_port: int, server_ports: list[int]) -> Path:
    """The shipped config with only its bind line and its server lines replaced."""
    config = CONFIG.read_text()
    servers = re.findall(r"(?m)^    server fs\d+ 127\.0\.0\.1:\d+ (.*)$", config)
    assert servers, "the shipped config lists its servers as `server fsN 127.0.0.1:PORT ...`"
    config = re.sub(r"(?m)^    server fs\d+ .*\n", "", config)
    lines = "".join(f"    server fs{i} 127.0.0.1:{port} {servers[0]}\n" for i, port in enumerate(server_ports, 1))
    config = config.rstrip("\n") + "\n" + lines
    config, binds = re.subn(r"(?m)^    bind :80$", f"    bind 127.0.0.1:{listen_port}", config)
    assert binds == 1, "the shipped config binds `:80` once"
    path = workdir / "haproxy.cfg"
    path.write_text(config)
    return path


def start(workdir: Path, listen_port: int, server_ports: list[int]) -> subprocess.Popen:
    haproxy = ensure_program(HAPROXY, ("haproxy",))
    config = render(workdir, listen_port, server_ports)
    subprocess.run([str(haproxy), "-c", "-f", str(config)], check=True, capture_output=True)
    with open(workdir / "haproxy.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(haproxy), "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
