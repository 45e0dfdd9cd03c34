"""PSNR / SSIM and seconds per image of every classic and pretrained baseline.

1. Sanity check against published figures: 256 x 256 crops of scikit-image photos, Gaussian noise of sigma 10, 20,
   40 without clipping, raw method outputs (targets: multi-scale DCT ~35.8/32.0/28.6 dB, BM3D ~36.3/32.8/29.5,
   FFDNet ~36.5/33.3/30.2, noisy 28.1/22.1/16.1).
2. McMaster18 (../shared/data/val/mcmaster18) with seeded degradations, clipped to [0, 1]: Gaussian noise of
   sigma 10, 20, 40 (noisy, DCT, multi-scale DCT, NL-means, BM3D, FFDNet), and camera-shake blur (kernels of 7 to
   31 pixels) with 1% noise (blurry, l0 blind, Wiener, TV and Richardson-Lucy with the true kernel).

    python benchmarks/baselines.py [--limit N] [--methods dct msdct ...] [--skip-sanity] [--skip-mcmaster]

BLAS and torch run on one thread (set OPENBLAS_NUM_THREADS to change it) so timings compare methods fairly.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import importlib.util
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from mprnet.baselines import BASELINES
from mprnet.degrade import MotionBlur
from mprnet.degrade.noise import add_gaussian_noise
from mprnet.metrics import psnr, ssim

SIGMAS = (10, 20, 40)
DENOISERS = ("dct", "msdct", "nlmeans", "bm3d", "ffdnet")
DEBLURRERS = ("l0", "wiener", "tv", "richardson-lucy")
SANITY_METHODS = ("dct", "msdct", "bm3d", "ffdnet")
SANITY_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
BLUR_NOISE_SIGMA = 2.55


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="McMaster18 (../shared/data/val/mcmaster18 in this project)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N McMaster photos")
    parser.add_argument("--methods", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("--skip-sanity", action="store_true")
    parser.add_argument("--skip-mcmaster", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = [m for m in args.methods if _available(m)]
    if not args.skip_sanity:
        crops = [getattr(skimage.data, name)()[:256, :256, :3].astype(np.float64) / 255 for name in SANITY_PHOTOS]
        print(f"Sanity: {len(crops)} crops 256x256 of scikit-image photos, unclipped noise, raw outputs")
        _denoising_table(crops, [m for m in SANITY_METHODS if m in methods], clip=False)
    if args.skip_mcmaster or args.data is None:
        print("\nMcMaster18 tables skipped" + ("" if args.skip_mcmaster else ": no --data folder given"))
        return
    photos = _read_photos(args.data, args.limit)
    if not photos:
        print(f"McMaster18 not found at {args.data}: skipped")
        return
    print(f"\nMcMaster18: {len(photos)} photos, noisy images clipped to [0, 1]")
    _denoising_table(photos, [m for m in DENOISERS if m in methods], clip=True)
    _deblurring_table(photos, [m for m in DEBLURRERS if m in methods])


def _available(method: str) -> bool:
    package = BASELINES[method].package
    if package and importlib.util.find_spec(package) is None:
        print(f"{method}: skipped, optional package {package} not installed")
        return False
    return True


def _read_photos(folder: Path, limit: int | None) -> list[np.ndarray]:
    paths = sorted(folder.glob("*.png"), key=lambda p: (len(p.stem), p.stem))[:limit] if folder.is_dir() else []
    return [np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255 for path in paths]


def _denoising_table(photos: list[np.ndarray], methods: list[str], clip: bool) -> None:
    rows: dict[str, list[str]] = {"noisy": [], **{m: [] for m in methods}}
    for sigma in SIGMAS:
        noisy = [_noisy(photo, sigma, index, clip) for index, photo in enumerate(photos)]
        rows["noisy"].append(_cell(photos, noisy, 0.0))
        for method in methods:
            restore = BASELINES[method] if clip else BASELINES[method].restore
            rows[method].append(
                _timed_cell(photos, [functools.partial(restore, image, sigma=sigma) for image in noisy])
            )
    _print_table([f"sigma {s}" for s in SIGMAS], rows)


def _noisy(photo: np.ndarray, sigma: float, index: int, clip: bool) -> np.ndarray:
    noisy = add_gaussian_noise(photo, sigma, np.random.default_rng([sigma, index])).astype(np.float64)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def _deblurring_table(photos: list[np.ndarray], methods: list[str]) -> None:
    degradation = MotionBlur(kernel_size=(7, 31), noise_sigma=BLUR_NOISE_SIGMA, kind="shake")
    pairs = [degradation(photo.astype(np.float32), np.random.default_rng([7, i])) for i, photo in enumerate(photos)]
    blurry = [blurred.astype(np.float64) for blurred, _ in pairs]
    rows = {"blurry": [_cell(photos, blurry, 0.0)]}
    for method in methods:
        restore = BASELINES[method]
        calls = [
            functools.partial(restore, image, sigma=BLUR_NOISE_SIGMA, kernel=params["kernel"])
            for image, (_, params) in zip(blurry, pairs)
        ]
        rows[method] = [_timed_cell(photos, calls)]
    print(f"\nCamera-shake blur, kernels 7-31 px, noise sigma {BLUR_NOISE_SIGMA} (l0 blind, others true kernel)")
    _print_table(["deblurring"], rows)


def _timed_cell(photos: list[np.ndarray], calls: list) -> str:
    start = time.perf_counter()
    restored = [call() for call in calls]
    return _cell(photos, restored, (time.perf_counter() - start) / len(calls))


def _cell(photos: list[np.ndarray], restored: list[np.ndarray], seconds: float) -> str:
    quality = [(psnr(r, p), ssim(np.clip(r, 0, 1), p)) for r, p in zip(restored, photos)]
    mean_psnr, mean_ssim = np.mean(quality, axis=0)
    return f"{mean_psnr:6.2f} {mean_ssim:.4f} {seconds:6.2f}s"


def _print_table(columns: list[str], rows: dict[str, list[str]]) -> None:
    headers = [f"{column} (PSNR SSIM s/img)" for column in columns]
    width = max(len(text) for text in headers + [cell for cells in rows.values() for cell in cells]) + 2
    print(f"{'method':<16}" + "".join(f"{header:<{width}}" for header in headers))
    for name, cells in rows.items():
        print(f"{name:<16}" + "".join(f"{cell:<{width}}" for cell in cells))


if __name__ == "__main__":
    main()
