"""Timing that the benchmarks share: calls measured side by side."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def interleaved_medians(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The median seconds of each call over `rounds` rounds in which the calls take turns, so that neither a change
    in the machine's load nor a call's place in the order favours one of them. Warm the calls up first."""
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {name: float(np.median(runs)) for name, runs in seconds.items()}
