"""The bounded job queue behind `mprnet serve`, without HTTP."""

import asyncio
import os
import threading
import time

import pytest

from mprnet.errors import MprnetError
from mprnet.serve.jobs import Deadline, JobBook, JobQueue, JobTimeout, QueueFull, can_isolate


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


@pytest.mark.skipif(not can_isolate(), reason="isolated jobs need fork")
def test_an_isolated_jobs_progress_reaches_its_record_in_the_server():
    queue = JobQueue(workers=1, queue_size=0, timeout_s=10, isolate=True)
    book = JobBook(keep=4, keep_s=60)
    job = book.add(estimate_s=None)
    heard = []

    def tiled(deadline: Deadline):
        import os

        for done in (1, 2, 3):
            deadline.progress(done, 3)
        return os.getpid()

    real_progress = job.progress
    job.progress = lambda done, total: (heard.append((done, total)), real_progress(done, total))
    future, _ = queue.submit(tiled, job)
    child = future.result(10)
    wait_for(lambda: job.finished)
    assert child != os.getpid()  # it ran in another process
    assert heard == [(1, 3), (2, 3), (3, 3)]
    assert job.state == "done" and job.result == child and (job.tiles_done, job.tiles_total) == (3, 3)
    queue.shutdown()


# The job API (POST /api/jobs, GET /api/jobs/{id}, GET /api/jobs/{id}/result), with a restorer driven step by step.

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
httpx = pytest.importorskip("httpx")


@pytest.mark.skipif(not can_isolate(), reason="needs the fork start method")
def test_no_job_forks_before_the_servers_other_threads_are_ready():
    """A child forked while the examples' thread held Python's import lock waited for it forever (the first
    calibration job hung): the queue runs `before_fork` to its end first, so the child sees what it did."""
    state = {"ready": False}
    queue = JobQueue(1, 0, 10, isolate=True, before_fork=lambda: state.update(ready=True))
    assert asyncio.run(queue.run(lambda deadline: (os.getpid(), state["ready"])))[1] is True
    queue.shutdown()


import numpy as np  # noqa: E402

from mprnet.serve import Settings, create_app  # noqa: E402
from mprnet.serve.server import serving  # noqa: E402

from test_serve_api import assert_error, encode, random_pixels, tiny_settings  # noqa: E402

TILES = 4
SIDE = 32


class Stepped:
    """A classic method of task denoise that restores in TILES tiles, each when the test allows one more step;
    it fails on a photo whose first pixel is exactly 0."""

    name, title, task, kind, summary, needs, uses = "stepped", "Stepped", "denoise", "classic", "step by step", (), ()

    def __init__(self):
        self.steps = threading.Semaphore(0)

    def __call__(self, image, progress=None, **known):
        if image[0, 0, 0] == 0:
            raise MprnetError("this photo cannot be restored")
        for done in range(1, TILES + 1):
            assert self.steps.acquire(timeout=10), "the test gave no step"
            progress(done, TILES)
        return image


class FakeClock:
    """Seconds that pass only when told to."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def job_settings(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("jobs-models")
    return tiny_settings(folder, isolate_jobs=False, job_timeout_s=60, keep_jobs=2, keep_jobs_s=100, baselines=False)


@pytest.fixture
def served(job_settings):
    """The app with the Stepped method, its speed already known (10 s per megapixel), and a fake clock."""
    app = create_app(job_settings)
    stepped = Stepped()
    app.state.catalogue.tasks["denoise"]["stepped"] = stepped
    app.state.speeds.record(("denoise", "stepped"), seconds=10.0, pixels=1_000_000)
    clock = FakeClock()
    app.state.jobs.clock = clock
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, stepped, clock, app
    for _ in range(TILES * 4):  # let a job still waiting for steps end
        stepped.steps.release()


def submit(client, pixels, **fields):
    files = {"image": ("photo.png", encode(pixels), "image/png")}
    return client.post("/api/jobs", files=files, data={"task": "denoise", "method": "stepped", **fields})


def state_when(client, job_id: str, condition, budget: int = 500) -> dict:
    """GET the job until `condition(state)` holds, at most `budget` times."""
    for _ in range(budget):
        state = client.get(f"/api/jobs/{job_id}").json()
        if condition(state):
            return state
        time.sleep(0.01)
    raise AssertionError(f"the job never reached the state asked for; last: {state}")


def test_a_job_goes_from_queued_through_running_to_done_with_its_progress(served):
    client, stepped, clock, _app = served
    answer = submit(client, random_pixels(side=SIDE))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == job["status_url"] == f"/api/jobs/{job['id']}"
    assert job["result_url"] == f"/api/jobs/{job['id']}/result"
    assert job["state"] in ("queued", "running") and job["tiles_done"] == 0
    # 32 x 32 px at 10 s per megapixel
    assert job["estimate_s"] == pytest.approx(0.0, abs=0.05) and job["seconds_per_megapixel"] == 10.0
    assert job["work_megapixels"] == pytest.approx(SIDE * SIDE / 1e6, abs=1e-3)
    result = client.get(job["result_url"])
    assert_error(result, 409, "still")
    running = state_when(client, job["id"], lambda state: state["state"] == "running")
    assert running["percent"] == 0
    clock.now += 3  # the first tile takes 3 s
    stepped.steps.release()
    first = state_when(client, job["id"], lambda state: state["tiles_done"] == 1)
    assert first["tiles_total"] == TILES and first["percent"] == 25.0
    assert first["left_s"] == pytest.approx(9.0, abs=0.01)  # 3 tiles to go at 3 s each
    assert first["elapsed_s"] == pytest.approx(3.0, abs=0.01)
    for _ in range(TILES - 1):
        stepped.steps.release()
    done = state_when(client, job["id"], lambda state: state["state"] == "done")
    assert done["percent"] == 100 and done["left_s"] == 0 and done["tiles_done"] == TILES
    result = client.get(job["result_url"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert result.headers["x-method"] == "stepped" and result.headers["x-task"] == "denoise"
    assert 'filename="photo-restored.png"' in result.headers["content-disposition"]
    assert float(result.headers["x-seconds"]) >= 0


def test_a_jobs_result_has_the_headers_of_the_synchronous_call(served, job_settings):
    client, _stepped, _clock, _app = served
    image = encode(random_pixels(side=SIDE))
    files = {"image": ("photo.png", image, "image/png")}
    job = client.post("/api/jobs", files=files, data={"task": "denoise"}).json()  # the network: judged
    state_when(client, job["id"], lambda state: state["state"] == "done")
    result = client.get(job["result_url"])
    direct = client.post("/api/restore", files=files, data={"task": "denoise"})
    assert result.status_code == direct.status_code == 200
    assert result.content == direct.content
    described = {"x-task", "x-method", "x-judged", "x-warning", "content-disposition", "content-type"}
    assert {name: result.headers.get(name) for name in described} == {
        name: direct.headers.get(name) for name in described
    }
    assert result.headers["x-judged"] in ("helped", "not better")


def test_a_failed_job_tells_its_error(served):
    client, _stepped, _clock, _app = served
    black = np.zeros((SIDE, SIDE, 3), np.float32)
    job = submit(client, black).json()
    failed = state_when(client, job["id"], lambda state: state["state"] == "failed")
    assert failed["status"] == 422 and "this photo cannot be restored" in failed["error"]
    assert_error(client.get(job["result_url"]), 422, "this photo cannot be restored")


def test_a_bad_upload_is_refused_before_it_becomes_a_job(served):
    client, _stepped, _clock, _app = served
    answer = client.post(
        "/api/jobs", files={"image": ("a.png", b"not an image", "image/png")}, data={"task": "nothing"}
    )
    assert_error(answer, 400, "unknown task 'nothing'")


def test_an_unknown_or_forgotten_job_is_a_404(served):
    client, stepped, clock, _app = served
    assert_error(client.get("/api/jobs/nonsense"), 404, "no job 'nonsense' here")
    assert_error(client.get("/api/jobs/nonsense/result"), 404, "never submitted")
    ids = []
    for _ in range(3):  # two are kept
        for _ in range(TILES):
            stepped.steps.release()
        ids.append(submit(client, random_pixels(side=SIDE)).json()["id"])
        state_when(client, ids[-1], lambda state: state["state"] == "done")
    assert_error(client.get(f"/api/jobs/{ids[0]}"), 404, "the last 2 of them")
    assert client.get(f"/api/jobs/{ids[1]}").status_code == 200
    clock.now += 101  # past the time finished jobs are kept
    assert_error(client.get(f"/api/jobs/{ids[2]}/result"), 404, "kept 100 s")


def test_an_image_whose_estimate_is_over_the_limit_is_refused_at_once(served, job_settings):
    client, _stepped, _clock, app = served
    # 60 s for an image of SIDE x SIDE px, measured on a larger one
    app.state.speeds.record(("denoise", "stepped"), seconds=60.0 * 2**40 / (SIDE * SIDE), pixels=2**40)
    too_long = "more than its limit of 60 s per job"
    answer = submit(client, random_pixels(side=2 * SIDE))  # 4 times the pixels: about 240 s
    assert_error(answer, 413, too_long)
    assert "about 240 s with stepped" in answer.json()["error"]
    files = {"image": ("big.png", encode(random_pixels(side=2 * SIDE)), "image/png")}
    direct = client.post("/api/restore", files=files, data={"task": "denoise", "method": "stepped"})
    assert_error(direct, 413, too_long)
    assert app.state.queue.admitted == 0  # nothing was started


def test_a_methods_speed_is_measured_at_its_first_use(job_settings, monkeypatch):
    """The calibration restores a photo of calibration_side px (timed on a clock the fake method moves on by
    5 s per megapixel), and the estimate of an upload follows from it."""
    from mprnet.serve import estimate

    clock = FakeClock()
    monkeypatch.setattr(estimate.time, "perf_counter", clock)
    seen = []

    class Metered:
        name, title, task, kind, summary, needs, uses = "metered", "Metered", "denoise", "classic", "", (), ()

        def __call__(self, image, progress=None, **known):
            seen.append(image.shape[:2])
            clock.now += 5 * image.shape[0] * image.shape[1] / 1e6
            return image

    app = create_app(Settings(**{**vars(job_settings), "calibration_side": 64, "job_timeout_s": 1}))
    app.state.catalogue.tasks["denoise"]["metered"] = Metered()
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        files = {"image": ("photo.png", encode(random_pixels(side=SIDE)), "image/png")}
        fields = {"task": "denoise", "method": "metered"}
        job = client.post("/api/jobs", files=files, data=fields)
        assert job.status_code == 202, job.text
        assert job.json()["seconds_per_megapixel"] == pytest.approx(5.0)
        assert job.json()["estimate_s"] == pytest.approx(5 * SIDE * SIDE / 1e6, abs=0.05)
        assert seen[:2] == [(64, 64), (64, 64)]  # twice: the first warms the method up
        big = {"image": ("big.png", encode(random_pixels(side=512)), "image/png")}  # 0.26 megapixels: 1.3 s
        assert_error(client.post("/api/restore", files=big, data=fields), 413, "about 1 s with metered")
