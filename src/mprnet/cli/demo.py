"""`mprnet demo`: the bundled models on scikit-image's sample photographs, scored and shown side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import MprnetError
from ..files import OverwriteError, atomic_path, refuse_existing, refuse_inside
from ..infer import DEFAULT_PRECISION, PRECISIONS
from ..tasks import TASK_NAMES
from . import add_number

HELP = "degrade sample photos, restore them with the bundled models, print PSNR/SSIM and write figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", default="demo-output", help="folder for the figures (default: demo-output)")
    parser.add_argument(
        "--task", action="append", choices=TASK_NAMES, help="only these tasks (repeatable; default: all)"
    )
    add_number(parser, "--size", int, least=16, default=256, help="side of the sample crops in pixels (default 256)")
    parser.add_argument(
        "--real",
        metavar="DIR",
        help="restore real photos instead, from DIR/noisy/, DIR/blurry/, DIR/rainy/ (centre crops of --size; no "
        "references, so each task's no-reference measure is printed); e.g. ../shared/data/real",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the figures and scores of an earlier demo")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS)


def run(args: argparse.Namespace) -> int:
    from ..demo import figure_path, run_demo, scores_path

    tasks = tuple(args.task) if args.task else TASK_NAMES
    if args.size < 16:
        raise MprnetError(f"--size expects at least 16 pixels, found {args.size}")
    _check_outputs(args, tasks)
    if args.real:
        return run_real(args, tasks)
    records = run_demo(args.out, device=args.device, precision=args.precision, size=args.size, tasks=tasks)
    print(f"{'task':8} {'image':10} {'PSNR before':>11} {'after':>7} {'SSIM before':>11} {'after':>7}")
    for r in records:
        print(
            f"{r['task']:8} {r['image']:10} {r['psnr_before']:11.2f} {r['psnr_after']:7.2f} "
            f"{r['ssim_before']:11.4f} {r['ssim_after']:7.4f}"
        )
    _write_json(scores_path(args.out), records)
    print(f"figures: {', '.join(str(figure_path(args.out, task)) for task in tasks)}")
    return 0


def run_real(args: argparse.Namespace, tasks: tuple[str, ...]) -> int:
    from ..demo import figure_path, run_real_demo, scores_path

    records = run_real_demo(
        args.real, args.out, device=args.device, precision=args.precision, size=args.size, tasks=tasks
    )
    print(f"{'task':8} {'image':28} {'measure':28} {'before':>7} {'after':>7}")
    for r in records:
        if "measure" in r:
            print(f"{r['task']:8} {r['image'][:28]:28} {r['measure']:28} {r['before']:7.2f} {r['after']:7.2f}")
        else:
            print(f"{r['task']:8} {r['image'][:28]:28} {'(by eye)':28}")
    _write_json(scores_path(args.out, real=True), records)
    shown = dict.fromkeys(r["task"] for r in records)
    print(f"figures: {', '.join(str(figure_path(args.out, task, real=True)) for task in shown)}")
    return 0


def _check_outputs(args: argparse.Namespace, tasks: tuple[str, ...]) -> None:
    """The -o folder: not a file, outside the --real photos, without the figures and scores of an earlier demo
    unless --overwrite."""
    from ..demo import demo_outputs

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OverwriteError(f"-o {out} is a file; name a folder for the figures")
    if args.real:
        refuse_inside(out, "-o", [args.real], "the --real photos")
    for path in demo_outputs(out, tasks, real=bool(args.real)):
        refuse_existing(path, "-o", args.overwrite)


def _write_json(path: Path, records: list[dict]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(records, indent=1))
