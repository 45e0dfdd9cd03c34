"""In which order to undo two degradations: photos blurred then noisy, or rainy then noisy, restored with the
bundled models in both orders (denoise first, or the other model first), mean PSNR against the clean photo.

    python benchmarks/auto_order.py [PHOTO_DIR] [--count N] [--crop PX]   (e.g. ../shared/data/val/mcmaster18)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mprnet.data import centre_crop
from mprnet.degrade import GaussianNoise, seeded_rng
from mprnet.demo import sample_photos
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.metrics import evaluate_pair
from mprnet.restorers import get_restorer
from mprnet.tasks import make_degradation

MIXTURES = {"blur, then noise sigma 15": ("deblur", "shake"), "light rain, then noise sigma 15": ("derain", "light")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path, help="clean photos (default: scikit-image's)")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    if args.photos is None:
        cleans = list(sample_photos(args.crop).values())
    else:
        cleans = [centre_crop(read_rgb(path), args.crop) for path in image_files(args.photos)[: args.count]]
    denoise = get_restorer("denoise")
    print(f"{len(cleans)} photos, {args.crop} px crops, {cpu_name()}; mean PSNR (dB, RGB) against the clean photo")
    for name, (task, level) in MIXTURES.items():
        other = get_restorer(task)
        scores: dict[str, list[float]] = {"degraded": [], "denoise first": [], f"{task} first": []}
        for index, clean in enumerate(cleans):
            rng = seeded_rng(5, name, index)
            first = make_degradation(task, level)(clean, rng)[0]
            degraded = np.clip(GaussianNoise(sigma=15)(first, rng)[0], 0, 1).astype(np.float32)
            outputs = {
                "degraded": degraded,
                "denoise first": other(np.clip(denoise(degraded), 0, 1)),
                f"{task} first": denoise(np.clip(other(degraded), 0, 1)),
            }
            for label, output in outputs.items():
                scores[label].append(evaluate_pair(np.clip(output, 0, 1), clean, "rgb")["psnr"])
        print(f"{name:34s} " + "  ".join(f"{label} {np.mean(values):.2f}" for label, values in scores.items()))


if __name__ == "__main__":
    main()
