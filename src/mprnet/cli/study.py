"""`mprnet study`: the IPOL article's tables and figures, reproduced on this machine."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..files import OverwriteError, refuse_inside
from ..study import StudySettings, run_study
from ..study.complexity import CostSettings
from ..study.report import finished_outputs
from ..tasks import TASK_NAMES
from . import add_number, add_tiling

HELP = "run the study: MPRNet against peers and classic methods, quality and cost, as an HTML report"
#: --quick: three photos cropped to 128 px, latency at 64 px; 2.5 minutes on a 2-core CPU (measured).
QUICK: dict[str, Any] = dict(images=3, crop=128, costs=CostSettings(size=64, repeats=2, warmup=1, memory=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="clean test photos, or GoPro (blur/ + sharp/ sequences, or MPRNet's GoPro/test/input/ + target/) or "
        "Rain100L/H pairs replacing the synthetic degradations of their task (repeatable; default: scikit-image's "
        "sample photos)",
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        metavar="DIR",
        help="official checkpoints (MPRNet, NAFNet, MIMO-UNet .pkl, DID-MDN), recognised by their keys; a file "
        "that does not load is skipped with a note; or official checkpoints' names, comma-separated (mprnet weights "
        "list; fetched on first use)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("study"),
        metavar="DIR",
        help="report folder; its cache/ lets a rerun continue (default: ./study)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the report of an earlier study in --out (its cache is reused)"
    )
    parser.add_argument("--quick", action="store_true", help="3 photos, 128 px crops, small latency inputs")
    parser.add_argument("--images", type=_at_least(1), metavar="N", help="photos per condition (default: all)")
    parser.add_argument(
        "--crop",
        type=_crop_side,
        metavar="N",
        help="centre crop side in pixels, at least 16; 0 for whole images (default: 256)",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASK_NAMES,
        default=list(TASK_NAMES),
        help="which experiments to run (default: all)",
    )
    parser.add_argument("--no-complexity", action="store_true", help="leave out the cost table")
    add_number(
        parser,
        "--figure-images",
        int,
        least=1,
        default=StudySettings.figure_images,
        metavar="N",
        help=f"images in each crop figure (default: {StudySettings.figure_images}, as the article; more than "
        "there are: every image)",
    )
    add_tiling(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradations (default: 0)")
    parser.add_argument("--device", default="cpu", help="where the networks restore: cpu, cuda, auto (default: cpu)")


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text) if text.lstrip("-").isdigit() else None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, found {text!r}")
        return value

    return parse


def _crop_side(text: str) -> int:
    return 0 if text == "0" else _at_least(16)(text)


def run(args: argparse.Namespace) -> int:
    read = [*args.data, *([args.weights_dir] if args.weights_dir else [])]
    if all(folder.is_dir() for folder in read):  # else run_study names the missing folder first, writing nothing
        _check_out(args)
    preset = QUICK if args.quick else {}
    crop = args.crop if args.crop is not None else preset.get("crop", 256)
    costs = None if args.no_complexity else preset.get("costs", CostSettings())
    settings = StudySettings(
        out=args.out,
        data=tuple(args.data),
        weights_dir=args.weights_dir,
        images=args.images or preset.get("images"),
        crop=crop or None,
        seed=args.seed,
        tasks=tuple(args.tasks),
        costs=costs,
        figure_images=args.figure_images,
        device=args.device,
        tile=args.tile,
        overlap=args.overlap,
        command=shlex.join(["mprnet", *sys.argv[1:]]),
    )
    print(f"wrote {run_study(settings)}")
    return 0


def _check_out(args: argparse.Namespace) -> None:
    """The report folder: not a file, outside the --data folders, and holding no finished report unless
    --overwrite (a folder with only cache/, as an interrupted study leaves it, is continued)."""
    if args.out.exists() and not args.out.is_dir():
        raise OverwriteError(f"--out {args.out} is a file; name a folder for the report")
    refuse_inside(args.out, "--out", args.data, "the --data folder")
    earlier = finished_outputs(args.out)
    if earlier and not args.overwrite:
        raise OverwriteError(
            f"--out {args.out} holds a finished study ({', '.join(earlier)}): pass --overwrite to replace it "
            "(its cache/ is reused), or choose another folder"
        )
