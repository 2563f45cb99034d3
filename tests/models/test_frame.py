"""The per-frame context, the options applied before the processors, and the processor registry."""
from __future__ import annotations

import numpy as np
import pytest

from models.choice import PROCESSORS, build_processors
from models.frame import FrameContext, Passthrough, apply_frame_options
from models.host import HostPool
from models.hub import ModelSettings


def test_a_clients_next_frame_shares_its_state_and_has_a_scratch_of_its_own():
    client = FrameContext(client_id=7, options={"opacity": 0.5})
    first, second = client.frame(0, 1.0), client.frame(1, 1.04)
    first.scratch["handed"] = "over"
    assert second.state is first.state is client.state and second.scratch == {}
    assert (second.client_id, second.order, second.time, second.options) == (7, 1, 1.04, {"opacity": 0.5})


def test_mirror_flips_only_the_frames_whose_client_asked():
    frames = [np.arange(12, dtype=np.uint8).reshape(2, 2, 3) for _ in range(3)]
    contexts = [FrameContext(options={"mirror": True}), FrameContext(), FrameContext(options={"mirror": False})]
    out = apply_frame_options(frames, contexts, HostPool())
    assert np.array_equal(out[0], frames[0][:, ::-1]) and out[1] is frames[1] and out[2] is frames[2]


def test_the_default_registry_is_read_only_and_another_one_can_be_used():
    with pytest.raises(TypeError):
        PROCESSORS["mine"] = lambda hub: Passthrough()  # type: ignore[index]
    [made] = build_processors(["mine"], ModelSettings(), factories={"mine": lambda hub: Passthrough()})
    assert isinstance(made, Passthrough)
    with pytest.raises(ValueError, match="unknown frame processor"):
        build_processors(["mine"], ModelSettings())
