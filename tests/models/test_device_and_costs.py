"""What the scheduling stands on: cost fits, the device queue, host stages, the simulated GPU,
and frames of one client analysed in order across concurrent batches."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.analysis import FrameOrder
from models.costs import LinearCost
from models.device import DeviceSession, ModelDevice
from models.host import HostPool
from models.hub import ModelHub, ModelSettings
from models.simulated import COST_TABLES, SimulatedSession
from models.tracking import HOLD_MAX_S, FaceTracker
from models.work import WorkAccount, working_on
from perf.synthetic_models import inswapper_like
from tests import media


# ---- cost fits --------------------------------------------------------------------
def test_a_fit_separates_a_fixed_cost_from_a_per_item_one():
    cost = LinearCost()
    for items in (1, 2, 4, 8) * 4:
        cost.add(items, 0.003 + 0.0005 * items)
    fixed, per_item = cost.fit()
    assert fixed == pytest.approx(0.003) and per_item == pytest.approx(0.0005)
    assert cost.predict(16) == pytest.approx(0.011)


def test_one_size_only_is_charged_all_per_item_and_a_few_others_separate_it():
    cost = LinearCost()
    for _ in range(20):
        cost.add(1, 0.004)
    assert cost.fit() == (0.0, pytest.approx(0.004)), "never promise more from a batch than was measured"
    for _ in range(3):
        cost.add(2, 0.005)
    assert cost.fit() == (pytest.approx(0.003), pytest.approx(0.001))


def test_old_samples_leave_the_window():
    cost = LinearCost(window=4)
    for seconds in (1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1):
        cost.add(1, seconds)
    assert cost.predict(1) == pytest.approx(0.1)


# ---- the device queue -------------------------------------------------------------
def test_the_oldest_work_gets_the_device_first_and_busy_time_is_measured():
    device = ModelDevice()
    order: list[str] = []
    holding = threading.Event()

    def hold() -> None:
        with working_on(WorkAccount(priority=0.0)):
            device.run("model", 1, lambda: (holding.set(), time.sleep(0.15)))

    def call(name: str, priority: float) -> None:
        with working_on(WorkAccount(priority=priority)):
            device.run("model", 1, lambda: order.append(name))

    first = threading.Thread(target=hold)
    first.start()
    holding.wait()
    waiting = [threading.Thread(target=call, args=(name, priority)) for name, priority in
               (("newest", 3.0), ("oldest", 1.0), ("middle", 2.0))]
    for thread in waiting:
        thread.start()
        time.sleep(0.02)  # they ask in the order newest, oldest, middle
    for thread in [first, *waiting]:
        thread.join()
    assert order == ["oldest", "middle", "newest"]
    assert 0.15 / 5 <= device.busy_fraction() <= 0.3 / 5
    assert set(device.cost_table()) == {"model"}


def test_a_sessions_calls_queue_for_the_device_and_are_accounted_to_their_work():
    class Model:
        def run(self, names, feeds):
            time.sleep(0.02)
            return [feeds["x"] * 2]

        def get_inputs(self):
            return ["x"]

    device = ModelDevice()
    session = DeviceSession(Model(), device, "double")
    account = WorkAccount(priority=time.monotonic())
    with working_on(account):
        [out] = session.run(None, {"x": np.ones((3, 2))})
    assert out.sum() == 12 and session.get_inputs() == ["x"]
    assert account.calls == 1 and account.device_s >= 0.02 and account.running_since is None
    assert device.costs["double"].samples[0][0] == 3  # items: the batch axis of the first input


def test_host_stages_are_timed_on_the_pools_threads():
    host = HostPool(ThreadPoolExecutor(2))
    account = WorkAccount(priority=0.0)

    def spin(seconds: float) -> float:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass
        return seconds

    with working_on(account):
        assert host.map("paste", spin, [0.02, 0.02, 0.02]) == [0.02] * 3
        with host.stage("tracking"):
            spin(0.01)
    assert account.host_cpu_s["paste"] == pytest.approx(0.06, abs=0.01)
    assert account.host_cpu_s["tracking"] == pytest.approx(0.01, abs=0.005)


# ---- the simulated accelerator ----------------------------------------------------
def test_a_simulated_swapper_takes_its_table_time_without_the_cpu(tmp_path):
    path = inswapper_like(tmp_path / "inswapper_128.onnx")
    cost = COST_TABLES["h100-fp32"]["inswapper_128"]
    session = SimulatedSession("inswapper_128", path, cost, open_real=None)
    assert [i.name for i in session.get_inputs()] == ["target", "source"]
    target = np.random.default_rng(0).random((6, 3, 128, 128), np.float32)
    wall, cpu = time.perf_counter(), time.thread_time()
    [output] = session.run(None, {"target": target, "source": np.zeros((6, 512), np.float32)})
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    expected = (cost.fixed_ms + 6 * cost.per_item_ms) / 1000
    assert expected <= wall < expected + 0.01
    assert cpu < expected / 4, f"a simulated call must not use the CPU: {cpu * 1000:.1f} ms"
    assert np.array_equal(output, target), "the swapper echoes its face crops: the right shape and range"


def test_a_simulated_detector_replays_the_real_models_outputs():
    real = ModelHub(ModelSettings())
    simulated = ModelHub(ModelSettings(provider="simulated", simulated_device="h100"))
    frames = [media.group_photo(), media.group_photo(320, 240)]
    expected = real.analyser.detector.detect(frames)
    detector = simulated.analyser.detector
    for attempt in range(2):  # computed by the real model once, replayed after
        found = detector.detect(frames)
        assert [len(faces) for faces in found] == [len(faces) for faces in expected] == [6, 6]
        for mine, theirs in zip(found, expected):
            assert np.allclose([f.box for f in mine], [f.box for f in theirs], atol=1e-3)
    assert detector.session.session.misses == 2, "each frame computed once, then replayed"
    assert detector.session.device.costs["scrfd_500m"].known


# ---- one client's frames, in order ------------------------------------------------
def test_a_clients_later_frame_waits_for_the_earlier_ones_analysis():
    order = FrameOrder()
    seen: list[int] = []

    def analyse(frame: int, delay: float) -> None:
        time.sleep(delay)
        order.wait_turn(frame)
        seen.append(frame)
        order.done(frame)

    threads = [threading.Thread(target=analyse, args=(frame, delay)) for frame, delay in ((2, 0.0), (1, 0.05), (0, 0.1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [0, 1, 2]


def test_a_face_unseen_for_long_is_not_held_however_few_frames_that_was():
    """At a few frames a second (a client sharing a busy server) the face has moved on: a held
    track would be a ghost swapped where nobody is."""
    face = media_face()
    tracker = FaceTracker(hold_frames=3)
    tracker.update([face], 0.0)
    assert len(tracker.update([], 1 / 30)) == 1, "a dropout at 30 fps is held"
    assert tracker.update([], HOLD_MAX_S + 0.1) == []


def media_face():
    from models.face import Face

    return Face(box=np.array([100, 100, 160, 170], np.float32), score=0.9,
                kps=np.array([[115, 125], [145, 125], [130, 140], [118, 155], [142, 155]], np.float32))
