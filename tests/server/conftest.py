from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import StartServer
from tests.server.gate import Gate


@pytest.fixture
def gate(start_server: StartServer) -> Iterator[Gate]:
    """A `Gate` for this test's server (`processors=gate.registry`). It is opened at the end,
    before the servers close (it needs `start_server`, so it is torn down first), so a failed
    test does not leave a shutdown waiting on a held batch."""
    gate = Gate()
    yield gate
    gate.open()
