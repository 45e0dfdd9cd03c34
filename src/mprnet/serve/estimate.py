"""How long a restoration will take, told before the work: the pixels a method works through (a tiled network's
tiles overlap, so it works through more than the photo's) times its seconds per megapixel on this machine. That
rate is measured once per method, at its first use, on a calibration photo restored in a job like any other (twice:
the first pass pays for what a process does only once), and then taken from each job of that method that finishes
on an image at least as large.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ..infer import Engine
from ..restorers import Restorer


def work_pixels(restorer: Restorer, width: int, height: int, frames: int = 1) -> int:
    """The pixels `restorer` works through for an image of that size: a tiled network's tiles, whole."""
    if isinstance(restorer, Engine) and restorer.tile:
        tile_w, tile_h = min(restorer.tile, width), min(restorer.tile, height)
        return frames * restorer.count_tiles(height, width) * tile_w * tile_h
    return frames * width * height


@dataclass(frozen=True)
class Estimate:
    """The seconds a restoration should take, from the megapixels of work and the method's measured rate."""

    seconds: float
    megapixels: float
    seconds_per_megapixel: float

    def describe(self) -> dict[str, float]:
        return {
            "estimate_s": round(self.seconds, 1),
            "work_megapixels": round(self.megapixels, 3),
            "seconds_per_megapixel": round(self.seconds_per_megapixel, 2),
        }


class Speeds:
    """Seconds per megapixel of work of each method (by key) on this machine: from the calibration, then from the
    finished jobs."""

    def __init__(self) -> None:
        self._rates: dict[Hashable, float] = {}
        self._measured_pixels: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def estimate(self, key: Hashable, pixels: int) -> Estimate | None:
        """The estimate for `pixels` of work; None until the method has been measured."""
        with self._lock:
            rate = self._rates.get(key)
        if rate is None:
            return None
        megapixels = pixels / 1e6
        return Estimate(rate * megapixels, megapixels, rate)

    def record(self, key: Hashable, seconds: float, pixels: int) -> None:
        """A measured time, which replaces the rate where its image was at least as large as the last one's."""
        with self._lock:
            if pixels >= self._measured_pixels.get(key, 0):
                self._rates[key] = seconds / (pixels / 1e6)
                self._measured_pixels[key] = pixels


def timed_twice(run: Callable[[], object]) -> float:
    """Seconds of the second of two runs (the first warms the method up)."""
    run()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started
