"""`python -m server`: run the facestream server until SIGINT/SIGTERM."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from models.registry import ModelError
from models.sessions import ProviderError

from .app import create_app
from .cli import parse_config
from .security import PathOnlyAccessLogger, is_loopback
from .tls import server_ssl_context

log = logging.getLogger("server")


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop roughly doubles WebSocket message throughput here; asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not (config.tokens or config.token_file) and not is_loopback(config.host):
        log.warning(
            "!!! listening on %s WITHOUT authentication: anyone who can reach port %d can use this server. "
            "Use --token/--token-file (and TLS), or --host 127.0.0.1 !!!", config.host, config.port,
        )
    ssl_context = server_ssl_context(config.certfile, config.keyfile) if config.certfile and config.keyfile else None
    try:
        web.run_app(
            create_app(config, on_drained=lambda: os.kill(os.getpid(), signal.SIGTERM)),
            host=config.host,
            port=config.port,
            ssl_context=ssl_context,
            access_log_class=PathOnlyAccessLogger,
            loop=_new_event_loop(),
            print=lambda text: log.info("%s", text.strip()),
            shutdown_timeout=5.0,
        )
    except (ModelError, ProviderError) as exc:  # raised while loading models at start-up
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
