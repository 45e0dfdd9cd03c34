"""`mprnet eval`: score a network on a paired data set with a benchmark's PSNR/SSIM protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import open_paired
from ..evaluate import check_outputs, default_protocol, evaluate, write_csv, write_json
from ..infer import PRECISIONS
from ..metrics import PROTOCOLS
from ..restorers import get_restorer
from ..tasks import TASK_NAMES
from . import add_tiling

HELP = "evaluate a network on a paired data set: per-image and mean PSNR/SSIM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dataset",
        type=Path,
        metavar="DATASET_DIR",
        help="input/ + target/ (or rainy/ + norain/), GoPro sequences or SIDD scenes",
    )
    parser.add_argument(
        "--task", choices=TASK_NAMES, help="what the network undoes (picks the bundled model and protocol)"
    )
    parser.add_argument("--weights", metavar="PATH", help="a checkpoint or bundled model name (default: the task's)")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        help="how PSNR/SSIM are computed (default: from the task, else from the data set's layout)",
    )
    parser.add_argument("--save-dir", type=Path, metavar="DIR", help="also write the restored images here (PNG)")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write per-image and mean figures as CSV")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write per-image and mean figures as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing --csv, --json and --save-dir images")
    add_tiling(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="arithmetic precision (default: fp32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")


def run(args: argparse.Namespace) -> int:
    dataset = open_paired(args.dataset)
    reports = {"--csv": args.csv, "--json": args.json}
    check_outputs(dataset, args.dataset, args.save_dir, reports, args.overwrite)
    protocol = args.protocol or default_protocol(args.task, dataset.layout)
    restorer = get_restorer(
        args.task, args.weights, device=args.device, precision=args.precision, tile=args.tile, overlap=args.overlap
    )
    print(f"{len(dataset)} pairs ({dataset.layout} layout), protocol {protocol}")
    results = evaluate(restorer, dataset, protocol, save_dir=args.save_dir, on_image=_print_row)
    print(
        f"{'mean':<40} PSNR {results['psnr']:7.3f} dB  SSIM {results['ssim']:.4f}  "
        f"({results['count']} images, {results['seconds']:.2f} s each)"
    )
    if args.csv:
        print(f"wrote {write_csv(results, args.csv)}")
    if args.json:
        print(f"wrote {write_json(results, args.json)}")
    return 0


def _print_row(row: dict) -> None:
    print(f"{row['name']:<40} PSNR {row['psnr']:7.3f} dB  SSIM {row['ssim']:.4f}  {row['seconds']:.2f} s", flush=True)
