"""Scheduling through a real server: batches sized for the device, paced clients, and the books.

Clients here are the probe's (`perf/drive.py`), the same flow control as `python -m client`,
streaming real faces over real sockets to a server on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from client.config import ClientConfig
from models.hub import ModelSettings
from perf.drive import StreamDriver
from perf.frames import moving_sequence, source_face
from perf.synthetic_models import inswapper_like
from protocol import PACING, Frame, ProcessedFrame, encode_binary
from server.app import DEVICES
from tests.server.test_streaming import assert_accounted
from tests.server.wsclient import receive


async def stream(server, clients: int, seconds: float, scene: str, pacing: bool, fps: float = 0.0) -> list:
    """`clients` drivers, each with its own face, streaming `scene` for `seconds`; their phases."""
    url = str(server.make_url("/"))

    async def one(index: int):
        config = ClientConfig(server_url=url, binary=True, pacing=pacing)
        driver = StreamDriver(config, moving_sequence(scene, 640, 480, 85, index), fps)
        async with aiohttp.ClientSession() as http:
            await driver.connect(http)
            try:
                await driver.send_source(source_face(index)[1])
                return await driver.stream(seconds)
            finally:
                await driver.close()

    return await asyncio.gather(*(one(i) for i in range(clients)))


async def stats(http: aiohttp.ClientSession, server) -> dict:
    async with http.get(server.make_url("/stats")) as response:
        return await response.json()


async def test_frames_of_different_clients_share_batches_on_a_device_where_batching_pays(start_server, http,
                                                                                          tmp_path):
    """The simulated GPU: a launch floor per call makes a frame added to a batch nearly free.
    Measured after a first phase in which the replayed models compute every frame once on the
    CPU (slowing the device) and the scheduler learns from single frames, as it starts."""
    inswapper_like(tmp_path / "inswapper_128.onnx")
    server = await start_server(models=ModelSettings(provider="simulated", models_dir=tmp_path), frame_processors=("inswapper",),
                                latency_target_ms=200.0)
    await stream(server, clients=6, seconds=3.0, scene="astronaut", pacing=False)
    before = await stats(http, server)
    await stream(server, clients=6, seconds=6.0, scene="astronaut", pacing=False)
    totals = await stats(http, server)
    [device] = totals["devices"]
    batches = totals["batches"] - before["batches"]
    assert (totals["batched_frames"] - before["batched_frames"]) / batches > 1.5, device
    assert device["model_costs"]["inswapper_128"]["fixed_ms"] > 0.2, "the fit found the per-call floor"
    assert totals["frames_processed"] > 100
    assert_accounted(totals)


async def test_a_cpu_device_keeps_its_batches_within_the_latency_target(start_server, http):
    """Eight clients as fast as they may on the CPU: a frame of each is always ready, and a
    batch of all eight would take ~8 frames' time (150-200 ms here), yet batches stay within
    the target: a batch of n costs about n frames there, so the scheduler takes few."""
    target_ms = 60.0
    server = await start_server(frame_processors=("classic",), max_batch=8, latency_target_ms=target_ms)
    await stream(server, clients=8, seconds=6.0, scene="astronaut", pacing=False)
    totals = await stats(http, server)
    [device] = totals["devices"]
    print(f"\nbatches: {totals['batch_size_avg']:.2f} frames on average, p95 {device['batch_time_p95_ms']} ms")
    assert device["batch_time_p95_ms"] <= 1.5 * target_ms, device
    assert totals["batch_size_avg"] < 6, device
    assert_accounted(totals)


async def test_a_paced_connection_hears_when_to_send_and_an_unpaced_one_does_not(start_server, http, frame_jpeg):
    server = await start_server(frame_processors=("classic",))
    for protocols, paced in (((PACING,), True), ((), False)):
        async with http.ws_connect(server.make_url("/"), protocols=protocols) as ws:
            assert ws.protocol == (PACING if paced else None)
            for seq in range(1, 4):
                await ws.send_bytes(encode_binary(Frame(jpeg=frame_jpeg, timestamp=time.perf_counter(), seq=seq)))
                reply = await receive(ws)
                assert isinstance(reply, ProcessedFrame) and reply.seq == seq
                assert (reply.pace_ms is not None) == paced
                if paced:
                    # One client on an idle server: its turn is one frame's processing.
                    assert 0 <= reply.pace_ms < 5000


@pytest.mark.slow
async def test_paced_clients_do_not_queue_behind_each_other(start_server, http):
    """Four paced clients share a CPU that cannot keep up with them: each frame waits for little
    more than its own processing, instead of for everyone else's frames (window 2 unpaced)."""
    server = await start_server(frame_processors=("classic",))
    latencies = {}
    for pacing in (False, True):
        phases = await stream(server, clients=4, seconds=6.0, scene="group", pacing=pacing, fps=30.0)
        samples = sorted(s for phase in phases for s in phase.latencies_s)
        latencies[pacing] = samples[len(samples) // 2]
    assert latencies[True] < 0.75 * latencies[False], latencies
    totals = await stats(http, server)
    assert_accounted(totals)
    [device] = server.app[DEVICES]
    assert device.batcher.scheduler.service_s() > 0
