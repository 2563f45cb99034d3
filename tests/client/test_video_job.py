"""`python -m client --input clip --output out`: every frame, in order, with its time and its sound.

Real clips made with PyAV (barcoded real-face frames at irregular times, an AAC tone), the real
client process, a real server on 127.0.0.1; what comes out is decoded and read back.
"""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from models.hub import ModelHub, ModelSettings
from server.app import create_app
from server.config import ServerConfig
from tests import media
from tests.client.conftest import PASSTHROUGH, assert_one_line_error, finish, run_client, start_client, ws_url

# Irregular spacing (a variable frame rate): every third frame 10 ms late.
TIMES = [index / 30 + (0.01 if index % 3 == 0 else 0.0) for index in range(45)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return media.write_clip(tmp_path_factory.mktemp("clips") / "in.mp4", TIMES, audio_s=1.5)


async def job_stats(http, server: TestServer) -> dict:
    async with http.get(server.make_url("/stats")) as response:
        return await response.json()


async def test_every_frame_comes_back_in_order_with_its_time_and_the_sound(start_server, http, face_path, clip, tmp_path):
    server = await start_server(**PASSTHROUGH)
    out = tmp_path / "out.mp4"
    run = await run_client("-s", str(face_path), "--input", str(clip), "--output", str(out),
                           "--server-url", ws_url(server))
    assert run.returncode == 0, run
    assert "done: 45 frames" in run.stdout and "Traceback" not in run.stderr
    assert "45/45" in run.stderr, "progress is shown"
    codes, times, audio = media.clip_contents(out)
    in_codes, in_times, in_audio = media.clip_contents(clip)
    assert codes == list(range(45)) and times == in_times
    assert np.array_equal(audio, in_audio), "the sound is copied as it was"
    stats = await job_stats(http, server)
    assert (stats["frames_received"], stats["frames_processed"], stats["frames_superseded"]) == (45, 45, 0)


async def test_the_faces_are_swapped(start_server, face_path, tmp_path):
    server = await start_server(frame_processors=("classic",))
    clip = media.write_clip(tmp_path / "in.mp4", [0.0, 0.04, 0.08, 0.12], width=640, height=480)
    out = tmp_path / "out.mp4"
    tom = media.insightface_image("Tom_Hanks_54745.png")
    run = await run_client("-s", str(tom), "--input", str(clip), "--output", str(out), "--server-url", ws_url(server),
                           timeout=120)
    assert run.returncode == 0, run
    boxes = [face.box for face in ModelHub(ModelSettings()).analyser.analyse([media.group_photo()], [True], False)[0]]
    inputs, outputs = media.clip_frames(clip), media.clip_frames(out)
    assert len(outputs) == 4
    faces, background = media.region_changes(inputs[0], outputs[0], boxes)
    # The rest changes only by a JPEG and an H.264 generation (about 4 levels in 255 here).
    assert background < 5.0, f"the rest must not change: {background}"
    assert min(faces) > 2 * background, f"every face must change: {faces}"


async def test_a_restarted_server_resumes_the_job_where_it_was(start_server, http, face_path, clip, tmp_path):
    """The result equals an uninterrupted job's: same frames, order, times and sound."""
    swapping = {"frame_processors": ("classic",)}  # slow enough to be stopped part way
    first = await start_server(**swapping)
    port = first.port
    out = tmp_path / "resumed.mp4"
    client = await start_client("-s", str(face_path), "--input", str(clip), "--output", str(out),
                                "--reconnect-max", "1", "--server-url", ws_url(first))
    second = None
    try:
        for _ in range(400):
            if (await job_stats(http, first))["frames_processed"] >= 10:
                break
            await asyncio.sleep(0.05)
        await first.close()
        await asyncio.sleep(0.3)
        second = TestServer(create_app(ServerConfig(host="127.0.0.1", port=port, codec_threads=2, **swapping)),
                            host="127.0.0.1", port=port)
        await second.start_server()
        run = await finish(client, timeout=60)
        assert run.returncode == 0, run
        assert "done: 45 frames" in run.stdout and "1 reconnects" in run.stdout, run
        assert 0 < (await job_stats(http, second))["frames_processed"] < 45, "the second server did only the rest"
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        if second is not None:
            await second.close()
    codes, times, audio = media.clip_contents(out)
    in_codes, in_times, in_audio = media.clip_contents(clip)
    assert codes == list(range(45)) and times == in_times and np.array_equal(audio, in_audio)


async def test_ctrl_c_leaves_a_playable_file_of_what_was_done(start_server, http, face_path, tmp_path):
    server = await start_server(frame_processors=("classic",))
    clip = media.write_clip(tmp_path / "long.mp4", [index / 30 for index in range(300)], width=640, height=480,
                            audio_s=10.0)
    out = tmp_path / "out.mp4"
    client = await start_client("-s", str(face_path), "--input", str(clip), "--output", str(out),
                                "--server-url", ws_url(server))
    try:
        for _ in range(600):
            if (await job_stats(http, server))["frames_processed"] >= 20:
                break
            await asyncio.sleep(0.05)
        client.send_signal(signal.SIGINT)
        run = await finish(client, timeout=30)
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    assert run.returncode == 130 and "stopped early (the file is playable)" in run.stdout, run
    codes, times, audio = media.clip_contents(out)
    assert 0 < len(codes) < 300 and codes == list(range(len(codes)))
    assert audio.shape[1] / 48000 <= times[-1] + 0.2, "the sound ends where the video does"


async def test_output_needs_an_input_video(face_path, tmp_path):
    run = await run_client("-s", str(face_path), "--output", str(tmp_path / "out.mp4"))
    assert_one_line_error(run, "--output needs --input VIDEO", returncode=2)
