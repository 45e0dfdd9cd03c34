"""Same-budget learning curves from training logs: validation PSNR against minutes of training, for runs given the
same compute (e.g. MPRNet and a peer side by side, one CPU thread each, the same time budget).

    python benchmarks/same_budget_curves.py RUN_DIR ... [--marks 5 10 15] [--out FILE.json]

Each RUN_DIR holds a trainer's `log.jsonl`; minutes count from the run's start record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]


def start_time(log: list[dict]) -> float:
    starts = [entry["time"] for entry in log if "start" in entry]
    if not starts:
        raise SystemExit("this log has no start record (written by trainers from this version on): cannot time it")
    return starts[0]


def curve(run_dir: Path) -> dict:
    """Validation points (minutes, step, PSNR), training speed and size of a run."""
    log = read_log(run_dir)
    began = start_time(log)
    points = [
        {
            "minutes": (entry["validation"]["time"] - began) / 60,
            "step": entry["validation"]["step"],
            "psnr": entry["validation"]["psnr"],
        }
        for entry in log
        if "validation" in entry
    ]
    speeds = [entry["patches_per_s"] for entry in log if "patches_per_s" in entry]
    return {"points": points, "patches_per_s": speeds[-1] if speeds else None}


def psnr_by(points: list[dict], minutes: float) -> float | None:
    """The last validation PSNR measured within `minutes` of the start."""
    reached = [point["psnr"] for point in points if point["minutes"] <= minutes]
    return reached[-1] if reached else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--marks", nargs="+", type=float, default=[5, 10, 15])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    curves = {run.name: curve(run) for run in args.runs}
    print("| run | patches/s | " + " | ".join(f"{mark:g} min" for mark in args.marks) + " | end (min) | steps |")
    print("|---|---|" + "---|" * len(args.marks) + "---|---|")
    for name, found in curves.items():
        points = found["points"]
        cells = ["-" if value is None else f"{value:.2f}" for value in (psnr_by(points, m) for m in args.marks)]
        end = f"{points[-1]['psnr']:.2f} ({points[-1]['minutes']:.1f})" if points else "-"
        print(
            f"| {name.removeprefix('run-')} | {found['patches_per_s']} | "
            + " | ".join(cells)
            + f" | {end} | {points[-1]['step'] if points else 0} |"
        )
    if args.out:
        args.out.write_text(json.dumps(curves, indent=1))


if __name__ == "__main__":
    main()
