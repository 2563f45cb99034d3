from __future__ import annotations

import pytest

from models.hub import ModelHub, ModelSettings


@pytest.fixture(scope="session")
def hub() -> ModelHub:
    """The embedded models on the CPU, shared by every test of the session."""
    return ModelHub(ModelSettings())
