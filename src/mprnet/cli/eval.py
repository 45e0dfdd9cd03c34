"""`mprnet eval`: score a network on a paired data set with a benchmark's PSNR/SSIM protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import open_paired
from ..evaluate import check_outputs, default_protocol, evaluate, task_of_data, write_csv, write_json
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
        help="input/ + target/ (or rainy/ + norain/), GoPro sequences or SIDD scenes; input/ + target/ under a "
        "GoPro folder (MPRNet's Datasets/GoPro/test) is scored as deblurring",
    )
    parser.add_argument(
        "--task", choices=TASK_NAMES, help="what the network undoes (picks the bundled model and protocol)"
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="a checkpoint, a bundled model's or an official checkpoint's name (default: the task's)",
    )
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
    task = args.task or task_of_data(dataset.layout, args.dataset)
    protocol = args.protocol or default_protocol(task)
    restorer = get_restorer(
        args.task, args.weights, device=args.device, precision=args.precision, tile=args.tile, overlap=args.overlap
    )
    print(f"{len(dataset)} pairs ({dataset.layout} layout), protocol {protocol}{_protocol_origin(args, task)}")
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


def _protocol_origin(args: argparse.Namespace, task: str | None) -> str:
    """Why the protocol is the one used, where neither --protocol nor --task said it."""
    if args.protocol or args.task:
        return ""
    if task:
        return f" (the {task} benchmark's: the data set is {task} pairs)"
    return " (nothing tells this data set's task: pass --task or --protocol for a benchmark's protocol)"


def _print_row(row: dict) -> None:
    print(f"{row['name']:<40} PSNR {row['psnr']:7.3f} dB  SSIM {row['ssim']:.4f}  {row['seconds']:.2f} s", flush=True)
