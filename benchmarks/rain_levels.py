"""Mean input PSNR / SSIM (Y channel, 8-bit, as derain papers report them) of each rain preset on ordinary photos,
beside the benchmarks the presets are calibrated to: Rain100L (about 26.9 dB / 0.84) and Rain100H (13.6 dB / 0.37).

Usage: python benchmarks/rain_levels.py [PHOTO_DIR] [--repeats N]
(default ../shared/data/val/mcmaster18, 256 px centre crops; scikit-image's sample photos when it is absent)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mprnet.data import centre_crop
from mprnet.demo import sample_photos
from mprnet.io import image_files, read_rgb
from mprnet.metrics import evaluate_pair
from mprnet.tasks import make_degradation

TARGETS = {"light": "Rain100L: 26.9 dB / 0.84", "medium": "between the two", "heavy": "Rain100H: 13.6 dB / 0.37"}
CROP = 256


def photos(folder: Path | None) -> tuple[str, list[np.ndarray]]:
    if folder is not None:
        return str(folder), [centre_crop(read_rgb(path), CROP) for path in image_files(folder)]
    return "scikit-image sample photos", list(sample_photos(CROP).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "photos",
        nargs="?",
        type=Path,
        help="a folder of clean photos, e.g. ../shared/data/val/mcmaster18 (default: scikit-image's)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rain draws per photo (default: 3)")
    args = parser.parse_args()
    source, cleans = photos(args.photos)
    print(f"{len(cleans)} photos from {source}, {CROP} px centre crops, {args.repeats} draws each, seeds fixed")
    print(f"{'level':8s} {'PSNR (dB)':>10s} {'SSIM':>6s} {'PSNR sd':>8s}  calibrated to")
    for level in ("light", "medium", "heavy"):
        rain = make_degradation("derain", level)
        scores = [
            evaluate_pair(rain(clean, np.random.default_rng([7, index, draw]))[0], clean, "rain100l")
            for index, clean in enumerate(cleans)
            for draw in range(args.repeats)
        ]
        psnr = [score["psnr"] for score in scores]
        ssim = np.mean([score["ssim"] for score in scores])
        print(f"{level:8s} {np.mean(psnr):10.2f} {ssim:6.3f} {np.std(psnr):8.2f}  {TARGETS[level]}")


if __name__ == "__main__":
    main()
