"""Time every named degradation on a 256 x 256 colour image, and SyntheticPairs items when the photos are there.

Usage: python benchmarks/degrade_speed.py [CLEAN_DIR]   (default ../shared/data/train/bsds432)
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from mprnet.tasks import TASKS, make_degradation

REPEATS = 20


def best_milliseconds(function, repeats: int = REPEATS) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return 1000 * min(timings)


def time_degradations() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((256, 256, 3), dtype=np.float32)
    for task in TASKS.values():
        for level in task.levels:
            degradation = make_degradation(task.name, level)
            print(
                f"{task.name:8s} {level:8s} {best_milliseconds(partial(degradation, image, rng)):7.2f} ms  (256x256x3)"
            )


def time_synthetic_pairs(clean_dir: Path) -> None:
    from mprnet.data import SyntheticPairs

    start = time.perf_counter()
    pairs = SyntheticPairs(clean_dir, make_degradation("deblur", None), patch_size=256)
    print(f"decoded {len(pairs.paths)} photos in {time.perf_counter() - start:.2f} s")
    indices = iter(range(REPEATS))
    print(f"SyntheticPairs deblur item {best_milliseconds(lambda: pairs[next(indices)]):7.2f} ms  (256x256 patch)")


if __name__ == "__main__":
    time_degradations()
    clean_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/train/bsds432")
    if clean_dir.is_dir():
        time_synthetic_pairs(clean_dir)
    else:
        print(f"no folder {clean_dir}: SyntheticPairs not timed")
