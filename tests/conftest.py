from __future__ import annotations

import dataclasses
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from models.choice import PROCESSORS, ProcessorFactory
from server.app import create_app
from server.config import ServerConfig
from tests import media


@pytest.fixture(scope="session")
def frame_jpeg() -> bytes:
    return media.jpeg(media.group_photo())


StartServer = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start a real facestream server on 127.0.0.1 (a free port) with config overrides.

    Transport tests run the passthrough processor unless they ask for another; a test's own
    processors come in a registry of their own (`processors={**PROCESSORS, "mine": ...}`).
    """
    servers: list[TestServer] = []

    async def start(processors: Mapping[str, ProcessorFactory] = PROCESSORS, **overrides: Any) -> TestServer:
        base = ServerConfig(host="127.0.0.1", port=0, codec_threads=2, frame_processors=("passthrough",))
        config = dataclasses.replace(base, **overrides)
        server = TestServer(create_app(config, processors=processors), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
