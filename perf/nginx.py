"""Run Debian's nginx on 127.0.0.1 with the project's own configs: deploy/nginx/facestream.conf
(for the load-balancer test and benchmark) or the README's snippet, each as written but for
its listen and upstream addresses (nginx is installed with apt when missing)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from perf.system_packages import ensure_program

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "facestream.conf"
README = ROOT / "README.md"
NGINX = Path("/usr/sbin/nginx")


def _listening_on(site: str, listen_port: int) -> str:
    return re.sub(r"(?m)^    listen 80;", f"    listen 127.0.0.1:{listen_port};", site)


def shipped_site(listen_port: int, upstream_ports: list[int]) -> str:
    """deploy/nginx/facestream.conf with only its listen and upstream lines replaced."""
    site = SITE.read_text()
    upstream = "\n".join(f"    server 127.0.0.1:{port} max_fails=0;" for port in upstream_ports)
    site = re.sub(r"(?m)^    server 127\.0\.0\.1:\d+ max_fails=0;\n", "", site)
    site = site.replace("    least_conn;", f"    least_conn;\n{upstream}", 1)
    return _listening_on(site, listen_port)


def readme_site(listen_port: int, upstream_port: int) -> str:
    """The README's nginx snippet with only its listen line and the server's port replaced."""
    blocks = re.findall(r"```nginx\n(.*?)```", README.read_text(), flags=re.S)
    if len(blocks) != 1:
        raise ValueError(f"README.md has {len(blocks)} nginx blocks; expected one")
    return _listening_on(blocks[0].replace("127.0.0.1:8765", f"127.0.0.1:{upstream_port}"), listen_port)


def render(workdir: Path, site: str) -> Path:
    """An nginx.conf that runs `site` (a file for nginx's http block) from `workdir`."""
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


def start(workdir: Path, site: str) -> subprocess.Popen:
    nginx = ensure_program(NGINX, ("nginx",))
    config = render(workdir, site)
    subprocess.run([str(nginx), "-t", "-p", str(workdir), "-c", str(config)], check=True, capture_output=True)
    return subprocess.Popen([str(nginx), "-p", str(workdir), "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
