"""Noise the same in every channel: black-and-white photos with Gaussian noise, and colour photos with luminance
noise (Gaussian, all of it common to the channels). PSNR of the noisy input, the bundled denoiser (trained on
colour noise), the classic methods given the true sigma (gray versions for gray photos), and `--task auto` (the
classifier's decision and noise level), per sigma.

    python benchmarks/luma_noise.py ../shared/data/val/mcmaster18 [--count 6] [--crop 256]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
from pathlib import Path

import numpy as np

import mprnet
from mprnet.api import restore_pixels
from mprnet.degrade import GaussianNoise, seeded_rng
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb, to_gray
from mprnet.metrics import psnr
from mprnet.restorers import get_restorer, resolve

SEED = 24_680
SIGMAS = (15, 25, 50)
KINDS = ("black and white", "colour, luminance noise")
CLASSICS = ("msdct", "bm3d", "ffdnet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val_dir", type=Path, help="clean photos, e.g. ../shared/data/val/mcmaster18")
    parser.add_argument("--count", type=int, default=6, help="photos (the first, by name)")
    parser.add_argument("--crop", type=int, default=256, help="central crop size")
    args = parser.parse_args()
    classics = [name for name in CLASSICS if name == "msdct" or importlib.util.find_spec(name)]
    columns = ["input", "bundled denoiser", *[f"{name} (true sigma)" for name in classics], "auto"]
    print(f"{args.count} photos of {args.val_dir}, central {args.crop} px; {cpu_name()}")
    print(f"{'photos, sigma':>28s}" + "".join(f"{column:>22s}" for column in columns) + f"{'auto chose':>24s}")
    for kind, sigma in itertools.product(KINDS, SIGMAS):
        scores: dict[str, list[float]] = {column: [] for column in columns}
        chosen: list[str] = []
        for path in image_files(args.val_dir)[: args.count]:
            photo = read_rgb(path)
            top, left = ((extent - args.crop) // 2 for extent in photo.shape[:2])
            crop = photo[top : top + args.crop, left : left + args.crop]
            clean = to_gray(crop) if kind == "black and white" else crop
            noise = GaussianNoise(sigma=sigma, shared=1.0)
            noisy = np.clip(noise(clean, seeded_rng(SEED, kind, sigma, path.name))[0], 0, 1)
            noisy = noisy.astype(np.float32)
            restored = {
                "input": noisy,
                "bundled denoiser": mprnet.restore(noisy, task="denoise"),
                **{f"{name} (true sigma)": mprnet.restore(noisy, method=name, sigma=sigma) for name in classics},
            }
            diagnosis, steps = resolve(get_restorer("auto"), noisy)
            restored["auto"] = noisy if steps is None else restore_pixels(noisy, steps)
            chosen.append(f"{diagnosis.decision} by {steps.name}" if steps is not None else diagnosis.decision)
            for column, image in restored.items():
                scores[column].append(psnr(image, clean))
        common = max(set(chosen), key=chosen.count)
        print(
            f"{kind + ', ' + str(sigma):>28s}"
            + "".join(f"{np.mean(scores[column]):19.2f} dB" for column in columns)
            + f"{common:>19s} ({chosen.count(common)}/{len(chosen)})"
        )


if __name__ == "__main__":
    main()
