"""Learning curves on this CPU: validation PSNR (sigma 25, McMaster18 crops) against minutes of training, for a few
denoising recipes run one after the other with the same time budget through the real trainer.

    python benchmarks/recipe_curves.py ../shared/data [--minutes 10] [--out docs/results/recipe_curves.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mprnet.train import Trainer
from mprnet.train.config import DataConfig, TrainConfig, ValConfig

DERAIN_WIDTH = {"name": "mprnet-derain"}
NARROW = {"name": "mprnet", "n_feat": 24, "scale_unetfeats": 12, "scale_orsnetfeats": 8, "num_cab": 4}

#: name -> (model, patch, batch, lr, warm-up steps): the published recipe at the derain width, then faster ones.
RECIPES = {
    "published (40/20/16, 64 px x 16, lr 2e-4)": (DERAIN_WIDTH, 64, 16, 2e-4, 100),
    "derain width, 64 px x 4, lr 1e-3": (DERAIN_WIDTH, 64, 4, 1e-3, 30),
    "narrow (24/12/8, 4 CABs), 64 px x 8, lr 1e-3": (NARROW, 64, 8, 1e-3, 30),
}


def run_recipe(name: str, minutes: float, out_dir: Path, shared: Path) -> list[dict]:
    model, patch, batch, lr, warmup = RECIPES[name]
    config = TrainConfig(
        task="denoise",
        model=dict(model),
        data=DataConfig(clean_dir=str(shared / "train" / "bsds432"), level="blind", workers=1),
        val=ValConfig(dir=str(shared / "val" / "mcmaster18"), level=25, count=4, crop=128, every=25),
        steps=100_000,
        time_budget_s=minutes * 60,
        batch_size=batch,
        patch_size=patch,
        lr=lr,
        warmup_steps=warmup,
        grad_clip=1.0,
        precision="auto",
        checkpoint_every=10_000,
        out_dir=str(out_dir),
    )
    torch.manual_seed(0)
    trainer = Trainer(config)
    trainer.run()
    return [
        {"minutes": (record["time"] - trainer.started) / 60, "step": record["step"], "psnr": record["psnr"]}
        for record in trainer.history
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the data folder holding train/bsds432 and val/mcmaster18")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--out", type=Path, default=Path("recipe_curves.json"))
    parser.add_argument("--work", type=Path, default=Path("runs/recipe_curves"))
    args = parser.parse_args()
    curves = {}
    for number, name in enumerate(RECIPES):
        curves[name] = run_recipe(name, args.minutes, args.work / str(number), args.data)
        points = ", ".join(f"{p['minutes']:.1f} min: {p['psnr']:.2f}" for p in curves[name])
        print(f"{name}\n  {points}", flush=True)
        args.out.write_text(json.dumps({"minutes": args.minutes, "curves": curves}, indent=1))


if __name__ == "__main__":
    main()
