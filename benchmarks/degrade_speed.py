"""Samples per second of every named degradation for one CPU worker (one thread), at 128 and 256 px patches, so
that a GPU run's data-loader workers can be sized; and SyntheticPairs items when the photos are there.

A degradation that needs context (blur) is timed on the larger crop the data set takes for it (patch + 2 margin).
Usage: python benchmarks/degrade_speed.py [CLEAN_DIR]   (default ../shared/data/train/bsds432)
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one worker: one thread
    os.environ[variable] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mprnet.infer import cpu_name  # noqa: E402
from mprnet.tasks import TASKS, make_degradation  # noqa: E402

SIZES = (128, 256)
SECONDS = 1.5  # per measurement


def samples_per_second(function) -> float:
    """Calls per second over at least SECONDS (and 5 calls), after one warm-up call."""
    function()
    calls, start = 0, time.perf_counter()
    while calls < 5 or time.perf_counter() - start < SECONDS:
        function()
        calls += 1
    return calls / (time.perf_counter() - start)


def time_degradations() -> None:
    print(f"{cpu_name()}, one thread; samples/s per worker (patch size, crop degraded)")
    print(f"{'task':8s} {'level':8s} " + " ".join(f"{f'{size} px':>16s}" for size in SIZES))
    rng = np.random.default_rng(0)
    for task in TASKS.values():
        for level in task.levels:
            degradation = make_degradation(task.name, level)
            cells = []
            for size in SIZES:
                crop = size + 2 * degradation.margin
                image = rng.random((crop, crop, 3), dtype=np.float32)
                rate = samples_per_second(partial(degradation, image, rng))
                cells.append(f"{rate:7.1f} ({crop:3d} px)")
            print(f"{task.name:8s} {level:8s} " + " ".join(f"{cell:>16s}" for cell in cells))


def time_synthetic_pairs(clean_dir: Path) -> None:
    from mprnet.data import SyntheticPairs

    for level in ("shake", "camera"):
        pairs = SyntheticPairs(clean_dir, make_degradation("deblur", level), patch_size=256)
        rate = samples_per_second(partial(next, iter(pairs)))
        print(f"SyntheticPairs deblur {level:6s} items/s {rate:7.1f}  (256 px patches of {clean_dir})")


if __name__ == "__main__":
    time_degradations()
    clean_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/train/bsds432")
    if clean_dir.is_dir():
        time_synthetic_pairs(clean_dir)
    else:
        print(f"no folder {clean_dir}: SyntheticPairs not timed")
