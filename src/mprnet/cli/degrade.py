"""`mprnet degrade`: make a paired folder (input/, target/, manifest.json) from a folder of clean images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..degrade import write_pairs
from ..tasks import TASK_NAMES, TASKS, describe_levels, make_degradation
from . import add_number

HELP = "degrade clean images (noise, motion blur, rain) into a paired input/ + target/ folder with a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=TASK_NAMES, help="which degradation to apply")
    parser.add_argument("--level", default=None, help=f"{describe_levels()} (default: the first of each list)")
    add_number(
        parser,
        "--seed",
        int,
        least=0,
        default=0,
        help="base seed; each image's seed comes from it and the image's file name (default: 0)",
    )
    parser.add_argument("clean_dir", type=Path, metavar="CLEAN_DIR", help="folder of clean images")
    parser.add_argument(
        "out_dir", type=Path, metavar="OUT_DIR", help="folder to write input/, target/ and manifest.json into"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the pairs and manifest of an earlier run in OUT_DIR"
    )


def run(args: argparse.Namespace) -> int:
    level = TASKS[args.task].default_level if args.level is None else args.level
    degradation = make_degradation(args.task, level)
    header = {"task": args.task, "level": level, "seed": args.seed}
    written = write_pairs(
        args.clean_dir,
        degradation,
        args.out_dir,
        args.seed,
        header,
        on_skip=lambda message: print(f"mprnet degrade: skipped {message}", file=sys.stderr),
        overwrite=args.overwrite,
    )
    skipped = len(written.skipped)
    print(f"wrote {written.count} pairs to {args.out_dir}" + (f"; skipped {skipped} files" if skipped else ""))
    return 1 if skipped else 0
