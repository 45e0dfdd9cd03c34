"""The bounded job queue behind `mprnet serve`, without HTTP."""

import asyncio
import threading
import time

import pytest

from mprnet.errors import MprnetError
from mprnet.serve.jobs import Deadline, JobQueue, JobTimeout, QueueFull


@pytest.fixture
def queue():
    queue = JobQueue(workers=1, queue_size=1, timeout_s=5)
    yield queue
    queue.shutdown()


def wait_for(condition, timeout: float = 5) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition never met"
        time.sleep(0.005)


def test_admits_workers_plus_queue_then_refuses(queue):
    release = threading.Event()
    running, waiting = (queue.submit(lambda deadline: release.wait(5))[0] for _ in range(2))
    wait_for(lambda: queue.running == 1)
    assert queue.admitted == 2
    with pytest.raises(QueueFull, match="busy"):
        queue.submit(lambda deadline: None)
    release.set()
    assert running.result(5) and waiting.result(5)
    wait_for(lambda: queue.admitted == 0)
    assert queue.submit(lambda deadline: 42)[0].result(5) == 42


def test_run_returns_the_result_and_passes_errors_through(queue):
    assert asyncio.run(queue.run(lambda deadline: "done")) == "done"

    def failing(deadline):
        raise MprnetError("bad image")

    with pytest.raises(MprnetError, match="bad image"):
        asyncio.run(queue.run(failing))
    wait_for(lambda: queue.admitted == 0)


def test_waiting_job_is_cancelled_at_its_deadline():
    queue = JobQueue(workers=1, queue_size=1, timeout_s=0.2)
    release = threading.Event()
    ran = []
    queue.submit(lambda deadline: release.wait(5))
    with pytest.raises(JobTimeout, match=r"longer than the limit of 0\.2 s"):
        asyncio.run(queue.run(lambda deadline: ran.append(True)))
    assert queue.admitted == 1  # only the blocking job still holds a slot
    release.set()
    wait_for(lambda: queue.admitted == 0)
    assert ran == []
    queue.shutdown()


def test_running_job_stops_at_its_next_deadline_check():
    queue = JobQueue(workers=1, queue_size=0, timeout_s=0.1)
    checks = []

    def cooperative(deadline: Deadline):
        while True:
            checks.append(1)
            deadline.check()
            time.sleep(0.01)

    future, _ = queue.submit(cooperative)
    with pytest.raises(JobTimeout):
        future.result(5)
    assert 3 <= len(checks) < 100
    queue.shutdown()


@pytest.mark.parametrize("workers, queue_size, timeout_s", [(0, 1, 1), (1, -1, 1), (1, 1, 0)])
def test_bad_sizes_are_refused(workers, queue_size, timeout_s):
    with pytest.raises(MprnetError, match="expected at least 1 worker"):
        JobQueue(workers, queue_size, timeout_s)


def slow_job(deadline):
    time.sleep(30)  # never checks its deadline, like a BM3D call
    return "too late"


def test_an_isolated_job_is_stopped_at_its_deadline_and_its_worker_comes_free():
    queue = JobQueue(workers=1, queue_size=0, timeout_s=0.5, isolate=True)
    started = time.monotonic()
    with pytest.raises(JobTimeout, match=r"0\.5 s"):
        asyncio.run(queue.run(slow_job))
    wait_for(lambda: queue.running == 0 and queue.admitted == 0, timeout=1.5)
    assert time.monotonic() - started < 2
    assert asyncio.run(queue.run(lambda deadline: "next")) == "next"
    queue.shutdown()


def test_an_isolated_job_returns_results_and_errors_like_a_thread():
    queue = JobQueue(workers=2, queue_size=0, timeout_s=10, isolate=True)
    assert asyncio.run(queue.run(lambda deadline: b"x" * 3_000_000)) == b"x" * 3_000_000

    def failing(deadline):
        raise MprnetError("bad image")

    with pytest.raises(MprnetError, match="bad image"):
        asyncio.run(queue.run(failing))

    def crashing(deadline):
        import os

        os._exit(3)

    with pytest.raises(MprnetError, match="exit status 3"):
        asyncio.run(queue.run(crashing))
    queue.shutdown()
