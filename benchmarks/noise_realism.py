"""Does realistic noise pay? The same short training of a narrow NAFNet twice, once on the blind noise the bundled
denoiser was trained on until camera noise existed (Gaussian sigma 0-50, a fifth Poisson-Gaussian) and once on
today's `mixed` level (which adds noise through a camera pipeline), each scored on the noise of the other.

    python benchmarks/noise_realism.py ../shared/data/train/bsds432 ../shared/data/val/mcmaster18 [--steps 1500]

Prints mean PSNR (RGB, 8-bit) on 128 px centre crops of the validation photos for each test noise: the input's,
and each model's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from mprnet.data import SyntheticPairs, centre_crop
from mprnet.degrade import CameraNoise, Degradation, GaussianNoise, MixedNoise, seeded_rng
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.metrics import evaluate_pair
from mprnet.models import create_model
from mprnet.tasks import make_degradation

NARROW_NAFNET = {"width": 16, "enc_blk_nums": [1, 1, 1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]}
TRAININGS = {
    "old: Gaussian + Poisson-Gaussian": lambda: MixedNoise(poisson_share=0.2, camera_share=0.0),
    "new: mixed, with camera noise": lambda: make_degradation("denoise", "mixed"),
}
TESTS = {
    "old noise": lambda: MixedNoise(poisson_share=0.2, camera_share=0.0),
    "Gaussian sigma 25": lambda: GaussianNoise(sigma=25),
    "camera noise": lambda: CameraNoise(),
    "camera, high ISO": lambda: CameraNoise(shot_range=(5e-3, 2e-2), jpeg_share=0.0),
}
CROP = 128


def train(degradation: Degradation, clean_dir: Path, steps: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    network = create_model("nafnet", **NARROW_NAFNET)
    pairs = SyntheticPairs(clean_dir, degradation, patch_size=64, length=steps * 8, seed=seed)
    loader = DataLoader(pairs, batch_size=8, num_workers=1, shuffle=False)
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=1e-5)
    network.train()
    for noisy, clean in loader:
        loss = (network(noisy) - clean).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return network.eval()


def test_sets(val_dir: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    cleans = [centre_crop(read_rgb(path), CROP) for path in image_files(val_dir)]
    return {
        name: [(make()(clean, seeded_rng(11, name, index))[0], clean) for index, clean in enumerate(cleans)]
        for name, make in TESTS.items()
    }


@torch.no_grad()
def mean_psnr(network: torch.nn.Module | None, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    scores = []
    for noisy, clean in pairs:
        output = noisy
        if network is not None:
            tensor = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]
            output = network(tensor)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
        scores.append(evaluate_pair(output, clean, "sidd")["psnr"])
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clean_dir", type=Path, help="clean training photos, e.g. ../shared/data/train/bsds432")
    parser.add_argument("val_dir", type=Path, help="clean validation photos, e.g. ../shared/data/val/mcmaster18")
    parser.add_argument("--steps", type=int, default=1500, help="training steps of batch 8, 64 px (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    tests = test_sets(args.val_dir)
    table = {"input": {name: mean_psnr(None, pairs) for name, pairs in tests.items()}}
    minutes = {}
    for name, make in TRAININGS.items():
        start = time.perf_counter()
        network = train(make(), args.clean_dir, args.steps, args.seed)
        minutes[name] = (time.perf_counter() - start) / 60
        table[name] = {test: mean_psnr(network, pairs) for test, pairs in tests.items()}
    print(
        f"narrow NAFNet ({sum(p.numel() for p in network.parameters()) / 1e6:.2f} M), {args.steps} steps of 8 x 64 px, "
        f"{cpu_name()}, {torch.get_num_threads()} threads; "
        f"mean PSNR (dB) on {len(tests['camera noise'])} {CROP} px crops of {args.val_dir}"
    )
    print(f"{'trained on':42s}" + "".join(f"{test:>19s}" for test in TESTS))
    for row, scores in table.items():
        label = row if row == "input" else f"{row} ({minutes[row]:.1f} min)"
        print(f"{label:42s}" + "".join(f"{scores[test]:19.2f}" for test in TESTS))
    if args.out:
        args.out.write_text(json.dumps({"steps": args.steps, "psnr": table, "minutes": minutes}, indent=1) + "\n")


if __name__ == "__main__":
    main()
