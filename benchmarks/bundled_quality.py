"""Quality of the bundled models against the classic baselines, on McMaster18 with seeded degradations.

Denoising at sigma 10/20/40 (MPRNet blind; BM3D and FFDNet given the true sigma), camera-shake deblurring with
kernels up to 31 px and 1% noise (MPRNet and l0 blind; Wiener and TV given the true kernel), light and heavy rain
(Y-channel PSNR, as deraining benchmarks report), and clean photos run through each model (PSNR against the input).
Prints mean PSNR/SSIM and seconds per image per method, and writes every figure to a JSON file.

    python benchmarks/bundled_quality.py [--data ../shared/data/val/mcmaster18] [--crop 256] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mprnet.api import get_restorer
from mprnet.baselines import get_baseline
from mprnet.data import centre_crop, image_files, read_rgb
from mprnet.degrade import GaussianNoise, MotionBlur, Rain
from mprnet.metrics import evaluate_pair

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "val" / "mcmaster18"


def conditions() -> list[dict]:
    """Each condition: a degradation, the protocol, and the methods (name -> how to call) to compare."""
    mprnet = lambda task: (lambda degraded, params: get_restorer(task=task)(degraded))  # noqa: E731
    baseline = lambda name, **known: (  # noqa: E731
        lambda degraded, params: get_baseline(name)(degraded, **{k: params[v] for k, v in known.items()}))
    identity = lambda degraded, params: degraded  # noqa: E731
    found = []
    for sigma in (10, 20, 40):
        found.append(dict(name=f"denoise sigma {sigma}", make=lambda s=sigma: GaussianNoise(sigma=s), protocol="rgb",
                          methods={"noisy": identity, "MPRNet (blind)": mprnet("denoise"),
                                   "BM3D (true sigma)": baseline("bm3d", sigma="sigma"),
                                   "FFDNet (true sigma)": baseline("ffdnet", sigma="sigma")}))
    found.append(dict(name="deblur shake <=31 px, 1% noise", make=lambda: MotionBlur(kernel_size=(7, 31)), protocol="rgb",
                      methods={"blurry": identity, "MPRNet (blind)": mprnet("deblur"),
                               "l0 (blind)": baseline("l0"),
                               "Wiener (true kernel)": baseline("wiener", kernel="kernel"),
                               "TV (true kernel)": baseline("tv", kernel="kernel")}))
    for level in ("light", "heavy"):
        found.append(dict(name=f"derain {level}", make=getattr(Rain, level), protocol="y",
                          methods={"rainy": identity, "MPRNet": mprnet("derain")}))
    for task in ("denoise", "deblur", "derain"):
        found.append(dict(name=f"clean photo through {task}", make=None, protocol="y" if task == "derain" else "rgb",
                          methods={f"MPRNet {task}": mprnet(task)}))
    return found


def run(data: Path, crop: int, only: list[str] | None) -> dict:
    photos = [(path.stem, centre_crop(read_rgb(path), crop)) for path in image_files(data)]
    results = {}
    for number, condition in enumerate(conditions()):
        if only and not any(word in condition["name"] for word in only):
            continue
        scores = {name: {"psnr": [], "ssim": [], "seconds": []} for name in condition["methods"]}
        for index, (stem, clean) in enumerate(photos):
            if condition["make"] is None:
                degraded, params = clean, {}
            else:
                degraded, params = condition["make"]()(clean, np.random.default_rng([number, index]))
                degraded = np.clip(degraded, 0, 1).astype(np.float32)
            for name, method in condition["methods"].items():
                start = time.perf_counter()
                restored = method(degraded, params)
                seconds = time.perf_counter() - start
                score = evaluate_pair(restored, clean, condition["protocol"])
                for key in ("psnr", "ssim"):
                    scores[name][key].append(score[key])
                scores[name]["seconds"].append(seconds)
        results[condition["name"]] = {name: {key: float(np.mean(values)) for key, values in figures.items()}
                                      for name, figures in scores.items()}
        print(f"\n{condition['name']} ({len(photos)} images, {condition['protocol'].upper()} protocol)")
        for name, figures in results[condition["name"]].items():
            print(f"  {name:22} PSNR {figures['psnr']:6.2f} dB   SSIM {figures['ssim']:.4f}   "
                  f"{figures['seconds']:6.2f} s/image", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--crop", type=int, default=256, help="centre crop side (0: whole images)")
    parser.add_argument("--only", nargs="*", help="run only conditions whose name contains one of these words")
    parser.add_argument("--out", type=Path, default=Path("bundled_quality.json"))
    args = parser.parse_args()
    results = run(args.data, args.crop, args.only)
    args.out.write_text(json.dumps({"data": str(args.data), "crop": args.crop, "results": results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
