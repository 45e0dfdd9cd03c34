"""Choose `diagnose.SHARP_KERNEL` on training photos: the blur kernel peak (`diagnose.kernel_peak`) of clean photos
and of photos blurred at every training level of the deblur task, and the threshold that splits clean from
camera-blurred photos with about equal errors.

    python scripts/calibrate_sharp_kernel.py ../shared/data/train/bsds432 [--photos 150]

Prints each condition's percentiles, the equal-error threshold and, at the bundled SHARP_KERNEL, the share of each
condition at or above it (for blurred photos: the share that the check would wrongly leave alone).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mprnet.degrade import seeded_rng
from mprnet.diagnose import SHARP_KERNEL, kernel_peak
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.tasks import make_degradation

SEED = 31
LEVELS: tuple[str | int, ...] = ("shake", "linear", "camera", 9)


def peaks(folder: Path, count: int) -> dict[str, np.ndarray]:
    """Per condition (clean and each blur level), the kernel peaks of `count` photos drawn from the folder."""
    paths = image_files(folder)
    chosen = np.random.default_rng(SEED).choice(len(paths), min(count, len(paths)), replace=False)
    found: dict[str, list[float]] = {"clean": [], **{str(level): [] for level in LEVELS}}
    for index in chosen:
        photo = read_rgb(paths[index])
        versions = {"clean": photo, **{str(level): blurred(photo, level, int(index)) for level in LEVELS}}
        measured = {condition: kernel_peak(pixels) for condition, pixels in versions.items()}
        for condition, peak in measured.items():
            if peak is not None:  # None: too small to tell, left to the classifier alone
                found[condition].append(peak)
    return {condition: np.array(values) for condition, values in found.items()}


def blurred(photo: np.ndarray, level: str | int, index: int) -> np.ndarray:
    degraded = make_degradation("deblur", level)(photo, seeded_rng(SEED, str(level), index))[0]
    return np.clip(degraded, 0, 1).astype(np.float32)


def equal_error_threshold(clean: np.ndarray, blurred: np.ndarray) -> float:
    """The threshold at which as many clean photos fall below it as blurred ones reach it."""
    grid = np.arange(0.05, 0.6, 0.01)
    return float(grid[np.argmin([abs(np.mean(clean < t) - np.mean(blurred >= t)) for t in grid])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir", type=Path, help="training photos, e.g. ../shared/data/train/bsds432")
    parser.add_argument("--photos", type=int, default=150)
    args = parser.parse_args()
    start = time.perf_counter()
    found = peaks(args.train_dir, args.photos)
    seconds = (time.perf_counter() - start) / sum(len(values) for values in found.values())
    print(f"{len(found['clean'])} photos of {args.train_dir}, {seconds:.2f} s per kernel on {cpu_name()}")
    for condition, values in found.items():
        spread = " ".join(
            f"{q}%: {v:.3f}" for q, v in zip((5, 25, 50, 75, 95), np.percentile(values, [5, 25, 50, 75, 95]))
        )
        print(f"{condition:8s} {spread}; at or above {SHARP_KERNEL}: {np.mean(values >= SHARP_KERNEL):.0%}")
    threshold = equal_error_threshold(found["clean"], found["camera"])
    missed, overruled = np.mean(found["clean"] < threshold), np.mean(found["camera"] >= threshold)
    print(
        f"equal-error threshold, clean against camera blur: {threshold:.2f} "
        f"(clean below it {missed:.0%}, camera blur at or above it {overruled:.0%})"
    )


if __name__ == "__main__":
    main()
