"""Run Debian's nginx on 127.0.0.1 with the project's own deploy/nginx/facestream.conf
(for the load-balancer test and benchmark; nginx is installed with apt when missing)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.system_packages import ensure_program

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "facestream.conf"
NGINX = Path("/usr/sbin/nginx")


def render(workdir: Path, listen_port: int, upstream_ports: list[int]) -> Path:
    """The shipped site config with only its listen and upstream lines replaced."""
    site = SITE.read_text()
    upstream = "\n".join(f"    server 127.0.0.1:{port} max_fails=0;" for port in upstream_ports)
    site = re.sub(r"(?m)^    server 127\.0\.0\.1:\d+ max_fails=0;\n", "", site)
    site = site.replace("    least_conn;", f"    least_conn;\n{upstream}", 1)
    site = re.sub(r"(?m)^    listen 80;", f"    listen 127.0.0.1:{listen_port};", site)
    (workdir / "site.conf").write_text(site)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / name).mkdir(exist_ok=True)
    main = workdir / "nginx.conf"
    main.write_text(f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format upstreams '$time_local $status upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {workdir}/access.log upstreams;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/site.conf;
}}
""")
    return main


def start(workdir: Path, listen_port: int, upstream_ports: list[int]) -> subprocess.Popen:
    nginx = ensure_program(NGINX, ("nginx",))
    config = render(workdir, listen_port, upstream_ports)
    subprocess.run([str(nginx), "-t", "-p", str(workdir), "-c", str(config)], check=True, capture_output=True)
    return subprocess.Popen([str(nginx), "-p", str(workdir), "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
