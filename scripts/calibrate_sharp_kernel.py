"""Choose `diagnose.SHARP_KERNEL` and check `diagnose.BLUR_DETAIL` on training photos: the blur kernel peaks
(`diagnose.crop_kernel_peaks`) and the detail (`diagnose.detail`) of clean photos and of photos blurred at every
training level of the deblur task, and the kernel threshold that leaves at most 5% of camera-blurred photos alone.

    python scripts/calibrate_sharp_kernel.py ../shared/data/train/bsds432 [--photos 150]

Prints, for the photo's most textured crop alone (the rule before KERNEL_CROPS) and for the sharpest of its
KERNEL_CROPS most textured crops (`diagnose.kernel_peak`), each condition's percentiles and its share at or above
the bundled SHARP_KERNEL (for blurred photos: the share that the check would wrongly leave alone), then the
threshold that leaves at most 5% of camera-blurred photos alone; then each condition's share of photos with less
detail than BLUR_DETAIL (for blurred photos: the share that this rule leaves alone).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mprnet.degrade import seeded_rng
from mprnet.diagnose import BLUR_DETAIL, KERNEL_CROPS, SHARP_KERNEL, crop_kernel_peaks, detail
from mprnet.errors import DataError, MprnetError
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.tasks import make_degradation

SEED = 31
LEVELS: tuple[str | int, ...] = ("shake", "linear", "camera", 9)
#: The share of camera-blurred photos that the check may leave alone: the 95% of blur that `--task auto` must find.
BLUR_LEFT_ALONE = 0.05


def peaks(folder: Path, count: int) -> tuple[dict[str, list[list[float]]], dict[str, list[float]]]:
    """Per condition (clean and each blur level), each of `count` photos' crop kernel peaks, the most textured crop
    first, and each photo's detail."""
    paths = image_files(folder)
    if not paths:
        raise DataError(f"Expected photos in {folder}, found none.")
    chosen = np.random.default_rng(SEED).choice(len(paths), min(count, len(paths)), replace=False)
    found: dict[str, list[list[float]]] = {"clean": [], **{str(level): [] for level in LEVELS}}
    details: dict[str, list[float]] = {condition: [] for condition in found}
    for index in chosen:
        photo = read_rgb(paths[index])
        versions = {"clean": photo, **{str(level): blurred(photo, level, int(index)) for level in LEVELS}}
        for condition, pixels in versions.items():
            details[condition].append(detail(pixels))
            measured = list(crop_kernel_peaks(pixels))
            if measured:  # none: too small to tell, left to the classifier alone
                found[condition].append(measured)
    return found, details


def blurred(photo: np.ndarray, level: str | int, index: int) -> np.ndarray:
    degraded = make_degradation("deblur", level)(photo, seeded_rng(SEED, str(level), index))[0]
    return np.clip(degraded, 0, 1).astype(np.float32)


def print_rule(title: str, photo_peaks: dict[str, np.ndarray]) -> None:
    """Per condition, the percentiles of one kernel peak per photo and the share at or above SHARP_KERNEL; then the
    threshold that leaves BLUR_LEFT_ALONE of camera-blurred photos alone."""
    print(title)
    for condition, values in photo_peaks.items():
        spread = " ".join(
            f"{q}%: {v:.3f}" for q, v in zip((5, 25, 50, 75, 95), np.percentile(values, [5, 25, 50, 75, 95]))
        )
        print(f"  {condition:8s} {spread}; at or above {SHARP_KERNEL}: {np.mean(values >= SHARP_KERNEL):.0%}")
    threshold = float(np.quantile(photo_peaks["camera"], 1 - BLUR_LEFT_ALONE))
    print(
        f"  threshold leaving {BLUR_LEFT_ALONE:.0%} of camera-blurred photos alone: {threshold:.3f} "
        f"(clean photos below it: {np.mean(photo_peaks['clean'] < threshold):.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir", type=Path, help="training photos, e.g. ../shared/data/train/bsds432")
    parser.add_argument("--photos", type=int, default=150)
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        found, details = peaks(args.train_dir, args.photos)
    except MprnetError as error:
        parser.error(str(error))
    if not found["clean"]:
        parser.error(f"no photo of {args.train_dir} is large enough to estimate a kernel")
    kernels = sum(len(crops) for photos in found.values() for crops in photos)
    seconds = (time.perf_counter() - start) / kernels
    print(f"{len(found['clean'])} photos of {args.train_dir}, {seconds:.2f} s per kernel on {cpu_name()}")
    print_rule("the most textured crop alone", {name: np.array([p[0] for p in ps]) for name, ps in found.items()})
    print_rule(
        f"the sharpest of the {KERNEL_CROPS} most textured crops (--task auto)",
        {name: np.array([max(p) for p in ps]) for name, ps in found.items()},
    )
    print(f"the detail of the most textured crop: share under {BLUR_DETAIL:g} (left alone as too smooth to tell)")
    for condition, values in details.items():
        print(f"  {condition:8s} {np.mean(np.array(values) < BLUR_DETAIL):.1%}")


if __name__ == "__main__":
    main()
