"""A bounded job queue: at most `workers` jobs run at once and at most `queue_size` more wait; beyond that a job is
refused at once (the server answers 503) rather than left to hang. Each job has a deadline counted from its
admission: a job still waiting then is cancelled.

A running job is stopped at its deadline. With `isolate` (the server's default where the system can fork), each job
runs in a child process forked from the server, which shares the loaded models at no cost and is killed when the
deadline passes, so the worker is free again at once whatever the method (a BM3D call cannot be interrupted).
Without it, the job runs on the worker thread and is asked to stop (`Deadline.check`, called between tiles); one
that cannot stop keeps its slot until it ends, so the server never runs more than it was sized for.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import MprnetError


class QueueFull(MprnetError):
    """Every running and waiting slot is taken."""


class JobTimeout(MprnetError):
    """A job did not finish within its time limit."""


class Deadline:
    """The moment a job must be done by; `check()` raises `JobTimeout` once it has passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise JobTimeout(f"the job took longer than the limit of {self.seconds:g} s")


class JobQueue:
    """Runs blocking functions on a fixed thread pool with a bounded number of admitted jobs."""

    def __init__(self, workers: int, queue_size: int, timeout_s: float, isolate: bool = False):
        if workers < 1 or queue_size < 0 or timeout_s <= 0:
            raise MprnetError(
                f"expected at least 1 worker, a queue of 0 or more and a positive time limit; found "
                f"{workers} workers, a queue of {queue_size} and {timeout_s:g} s"
            )
        if isolate and not can_isolate():
            raise MprnetError("isolated jobs need the fork start method, which this system lacks")
        self.workers, self.queue_size, self.timeout_s, self.isolate = workers, queue_size, timeout_s, isolate
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

    def submit(self, function: Callable[[Deadline], Any]) -> tuple[Future, Deadline]:
        """Admit `function(deadline)` or raise `QueueFull`; the slot is freed when the job ends or is cancelled."""
        if not self._slots.acquire(blocking=False):
            raise QueueFull(f"the server is busy ({self.workers} running, {self.queue_size} waiting); try again soon")
        with self._lock:
            self._admitted += 1
        deadline = Deadline(self.timeout_s)
        try:
            future = self._executor.submit(self._run, function, deadline)
        except RuntimeError:  # the pool is shut down
            self._release(None)
            raise QueueFull("the server is shutting down") from None
        future.add_done_callback(self._release)
        return future, deadline

    async def run(self, function: Callable[[Deadline], Any]) -> Any:
        """Submit and wait for the result (at most until the deadline): `QueueFull`, `JobTimeout` or its result."""
        future, deadline = self.submit(function)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # succeeds only while the job still waits; a running one stops at its next check
            raise JobTimeout(f"the job took longer than the limit of {deadline.seconds:g} s") from None

    def _run(self, function: Callable[[Deadline], Any], deadline: Deadline) -> Any:
        with self._lock:
            self._running += 1
        try:
            deadline.check()
            return run_in_child(function, deadline) if self.isolate else function(deadline)
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
    temporary files go to a folder of its own, removed when it ends, killed or not."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    scratch = tempfile.mkdtemp(prefix="mprnet-job-")
    child = context.Process(target=_child_main, args=(sender, function, deadline, scratch), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(max(0.0, deadline.at - time.monotonic())):
            raise JobTimeout(f"the job took longer than the limit of {deadline.seconds:g} s")
        try:
            failed, value = receiver.recv()
        except EOFError:  # the child died without answering (killed for memory, or crashed)
            child.join()
            raise MprnetError(f"the job's process ended without a result (exit status {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        raise value
    return value


def _child_main(sender, function: Callable[[Deadline], Any], deadline: Deadline, scratch: str) -> None:
    tempfile.tempdir = scratch
    try:
        reply = (False, function(deadline))
    except BaseException as error:
        reply = (True, error if _picklable(error) else MprnetError(str(error)))
    sender.send(reply)
    sender.close()


def _picklable(error: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
        return True
    except Exception:
        return False
