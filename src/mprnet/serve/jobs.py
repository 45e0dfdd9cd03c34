"""A bounded job queue: at most `workers` jobs run at once and at most `queue_size` more wait; beyond that a job is
refused at once (the server answers 503) rather than left to hang. Each job has a deadline counted from its
admission: a job still waiting then is cancelled.

A running job is stopped at its deadline. With `isolate` (the server's default where the system can fork), each job
runs in a child process forked from the server, which shares the loaded models at no cost and is killed when the
deadline passes, so the worker is free again at once whatever the method (a BM3D call cannot be interrupted).
Without it, the job runs on the worker thread and is asked to stop (`Deadline.check`, called between tiles); one
that cannot stop keeps its slot until it ends, so the server never runs more than it was sized for.

A job submitted with a `Job` record (the job API) tells it when it starts and how many tiles are done: from a child
process through the pipe its result comes back on. `JobBook` keeps the records, the finished ones for a while.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from ..errors import MprnetError


class QueueFull(MprnetError):
    """Every running and waiting slot is taken."""


class JobTimeout(MprnetError):
    """A job did not finish within its time limit."""


class UnknownJob(MprnetError):
    """A job id the server does not know (never given, or forgotten since)."""


#: What hears a job's progress: tiles done, tiles in the current pass.
Reporter = Callable[[int, int], None]


class Deadline:
    """The moment a job must be done by; `check()` raises `JobTimeout` once it has passed. `progress(done, total)`,
    the engine's callback, passes the tiles done on to the job's `reporter`, then checks."""

    def __init__(self, seconds: float, reporter: Reporter | None = None):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.reporter = reporter

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise JobTimeout(f"the job took longer than the limit of {self.seconds:g} s")

    def progress(self, done: int, total: int) -> None:
        if self.reporter is not None:
            self.reporter(done, total)
        self.check()


QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class Job:
    """One job of the job API: its state, the tiles done of the pass that runs (a frame, or a step of task auto),
    its times (`clock`'s seconds), the estimate made before the work, and its result or the error it failed with."""

    def __init__(self, job_id: str, estimate_s: float | None, clock: Callable[[], float]):
        self.id, self.estimate_s, self.clock = job_id, estimate_s, clock
        self.state = QUEUED
        self.tiles_done = self.tiles_total = 0
        self.submitted_at = clock()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.started_at, self.state = self.clock(), RUNNING

    def progress(self, done: int, total: int) -> None:
        self.tiles_done, self.tiles_total = done, total

    def finish(self, future: Future) -> None:
        """The future's outcome: its result, or the error it raised (a cancelled job: the server shut down)."""
        try:
            self.result, self.state = future.result(), DONE
        except CancelledError:
            self.error, self.state = QueueFull("the server shut down before the job ran"), FAILED
        except BaseException as error:
            self.error, self.state = error, FAILED
        self.finished_at = self.clock()

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    def elapsed_s(self) -> float:
        """Seconds since it was submitted, until it finished."""
        end = self.finished_at if self.finished_at is not None else self.clock()
        return end - self.submitted_at

    def percent(self) -> float:
        """How much is done: from the tiles of the running pass, else (a method that runs in one piece) from the
        time the estimate gives, short of 100 until the job ends."""
        if self.state == DONE:
            return 100.0
        if self.state != RUNNING or self.started_at is None:
            return 0.0
        if self.tiles_total:
            return 100.0 * self.tiles_done / self.tiles_total
        if self.estimate_s:
            return min(99.0, 100.0 * (self.clock() - self.started_at) / self.estimate_s)
        return 0.0

    def seconds_left(self) -> float | None:
        """From the tiles of the running pass where one is done (the time per tile so far), else what the estimate
        leaves; None where nothing tells."""
        if self.finished:
            return 0.0
        if self.state == RUNNING and self.tiles_done and self.started_at is not None:
            per_tile = (self.clock() - self.started_at) / self.tiles_done
            return per_tile * (self.tiles_total - self.tiles_done)
        if self.estimate_s is None:
            return None
        started = self.started_at if self.started_at is not None else self.clock()
        return max(0.0, self.estimate_s - (self.clock() - started))


class JobBook:
    """The job API's records by id. A finished job is kept `keep_s` seconds, and only the `keep` most recently
    finished; then it is forgotten (the unfinished ones are bounded by the queue)."""

    def __init__(self, keep: int, keep_s: float, clock: Callable[[], float] = time.monotonic):
        if keep < 1 or keep_s <= 0:
            raise MprnetError(f"expected to keep at least 1 finished job for some time; found {keep} for {keep_s:g} s")
        self.keep, self.keep_s, self.clock = keep, keep_s, clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, estimate_s: float | None) -> Job:
        job = Job(secrets.token_urlsafe(12), estimate_s, self.clock)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        return job

    def drop(self, job: Job) -> None:
        """Forget a job that was never admitted."""
        with self._lock:
            self._jobs.pop(job.id, None)

    def get(self, job_id: str) -> Job:
        with self._lock:
            self._forget_old()
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(
                f"no job {job_id!r} here: it was never submitted, or it finished long enough ago to be forgotten "
                f"(finished jobs are kept {self.keep_s:g} s, the last {self.keep} of them)"
            )
        return job

    def _forget_old(self) -> None:
        now = self.clock()
        finished = sorted((job for job in self._jobs.values() if job.finished), key=lambda job: job.finished_at or 0)
        for number, job in enumerate(finished):
            if now - (job.finished_at or now) > self.keep_s or number < len(finished) - self.keep:
                del self._jobs[job.id]


class JobQueue:
    """Runs blocking functions on a fixed thread pool with a bounded number of admitted jobs."""

    def __init__(
        self,
        workers: int,
        queue_size: int,
        timeout_s: float,
        isolate: bool = False,
        before_fork: Callable[[], None] | None = None,
    ):
        if workers < 1 or queue_size < 0 or timeout_s <= 0:
            raise MprnetError(
                f"expected at least 1 worker, a queue of 0 or more and a positive time limit; found "
                f"{workers} workers, a queue of {queue_size} and {timeout_s:g} s"
            )
        if isolate and not can_isolate():
            raise MprnetError("isolated jobs need the fork start method, which this system lacks")
        self.workers, self.queue_size, self.timeout_s, self.isolate = workers, queue_size, timeout_s, isolate
        #: Called before each fork: a child forked while another thread of the server holds a lock (Python's import
        #: lock, say) inherits it held and would wait for it forever.
        self.before_fork = before_fork
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mprnet-job")
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    @property
    def running(self) -> int:
        return self._running

    def submit(self, function: Callable[[Deadline], Any], job: Job | None = None) -> tuple[Future, Deadline]:
        """Admit `function(deadline)` or raise `QueueFull`; the slot is freed when the job ends or is cancelled.
        `job` hears when it starts, its progress and its outcome."""
        if not self._slots.acquire(blocking=False):
            raise QueueFull(f"the server is busy ({self.workers} running, {self.queue_size} waiting); try again soon")
        with self._lock:
            self._admitted += 1
        deadline = Deadline(self.timeout_s, None if job is None else job.progress)
        try:
            future = self._executor.submit(self._run, function, deadline, job)
        except RuntimeError:  # the pool is shut down
            self._release(None)
            raise QueueFull("the server is shutting down") from None
        future.add_done_callback(self._release)
        if job is not None:
            future.add_done_callback(job.finish)
        return future, deadline

    async def run(self, function: Callable[[Deadline], Any]) -> Any:
        """Submit and wait for the result (at most until the deadline): `QueueFull`, `JobTimeout` or its result."""
        future, deadline = self.submit(function)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # succeeds only while the job still waits; a running one stops at its next check
            raise JobTimeout(f"the job took longer than the limit of {deadline.seconds:g} s") from None

    def _run(self, function: Callable[[Deadline], Any], deadline: Deadline, job: Job | None) -> Any:
        with self._lock:
            self._running += 1
        try:
            deadline.check()
            if job is not None:
                job.start()
            if not self.isolate:
                return function(deadline)
            if self.before_fork is not None:
                self.before_fork()
            return run_in_child(function, deadline)
        finally:
            with self._lock:
                self._running -= 1

    def _release(self, _future: Future | None) -> None:
        with self._lock:
            self._admitted -= 1
        self._slots.release()

    def shutdown(self) -> None:
        """Cancel the waiting jobs; running ones end on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def can_isolate() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_in_child(function: Callable[[Deadline], Any], deadline: Deadline) -> Any:
    """`function(deadline)` in a forked child process, killed if it is still running at the deadline. The child's
    temporary files go to a folder of its own, removed when it ends, killed or not. Its progress comes back on the
    pipe its result comes on, to the deadline's reporter here."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    scratch = tempfile.mkdtemp(prefix="mprnet-job-")
    child = context.Process(target=_child_main, args=(sender, function, deadline, scratch), daemon=True)
    child.start()
    sender.close()
    try:
        failed, value = _child_reply(receiver, child, deadline)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        raise value
    return value


def _child_reply(receiver, child, deadline: Deadline) -> tuple[bool, Any]:
    """(failed, the result or error) from the child, passing its progress messages on as they come."""
    while True:
        if not receiver.poll(max(0.0, deadline.at - time.monotonic())):
            raise JobTimeout(f"the job took longer than the limit of {deadline.seconds:g} s")
        try:
            kind, *message = receiver.recv()
        except EOFError:  # the child died without answering (killed for memory, or crashed)
            child.join()
            raise MprnetError(f"the job's process ended without a result (exit status {child.exitcode})") from None
        if kind == "result":
            return message[0], message[1]
        if deadline.reporter is not None:
            deadline.reporter(*message)


def _child_main(sender, function: Callable[[Deadline], Any], deadline: Deadline, scratch: str) -> None:
    tempfile.tempdir = scratch
    if deadline.reporter is not None:  # the parent's record is not this process's: tell it through the pipe
        deadline.reporter = lambda done, total: sender.send(("progress", done, total))
    try:
        reply = ("result", False, function(deadline))
    except BaseException as error:
        reply = ("result", True, error if _picklable(error) else MprnetError(str(error)))
    sender.send(reply)
    sender.close()


def _picklable(error: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
        return True
    except Exception:
        return False
