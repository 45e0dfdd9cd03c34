"""`mprnet demo`: the bundled models on scikit-image's sample photographs, scored and shown side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..infer import PRECISIONS
from ..tasks import TASK_NAMES

HELP = "degrade sample photos, restore them with the bundled models, print PSNR/SSIM and write figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", default="demo-output", help="folder for the figures (default: demo-output)")
    parser.add_argument(
        "--task", action="append", choices=TASK_NAMES, help="only these tasks (repeatable; default: all)"
    )
    parser.add_argument("--size", type=int, default=256, help="side of the sample crops in pixels (default 256)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    tasks = tuple(args.task) if args.task else TASK_NAMES
    records = run_demo(args.out, device=args.device, precision=args.precision, size=args.size, tasks=tasks)
    print(f"{'task':8} {'image':10} {'PSNR before':>11} {'after':>7} {'SSIM before':>11} {'after':>7}")
    for r in records:
        print(
            f"{r['task']:8} {r['image']:10} {r['psnr_before']:11.2f} {r['psnr_after']:7.2f} "
            f"{r['ssim_before']:11.4f} {r['ssim_after']:7.4f}"
        )
    (Path(args.out) / "scores.json").write_text(json.dumps(records, indent=1))
    print(f"figures: {', '.join(str(Path(args.out) / f'{task}.png') for task in tasks)}")
    return 0
