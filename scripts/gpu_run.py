"""The whole GPU run in one call: trains the named configs one after another (one process on the GPU at a time),
each for its minutes on the photos packed in DATA (scripts/pack_device_data.py), then leaves in OUT what a device
call brings back (at most eight files of 16 MiB):
  <config>.safetensors  the best weights (fp16) of each run that beat the weights it started from
  summary.md            one page: per run, minutes, steps, patches, patches/s, validation before and after, shipped
  logs.tar.gz           every run's log.jsonl, config.json and console output
Each config's own init_weights says what it continues (the bundled configs continue the bundled models).
  scripts/gpu_run.sh OUT CONFIG=MINUTES ... [--data DIR] [--work DIR] [--set KEY=VALUE ...]
Exit status: 0 when every run ended, 1 when one failed (the others still ran), 2 for unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from mprnet.checkpoint import resave_weights
from mprnet.cli.train import parse_overrides
from mprnet.errors import MprnetError
from mprnet.files import atomic_path
from mprnet.train import load_config
from mprnet.train.runlog import RunRecord

#: Files a device call brings back, less the summary and the logs.
MOST_RUNS = 6
#: Seconds a run may take beyond its budget (start, validation, export) before it is stopped.
GRACE_S = 120


@dataclass
class Run:
    config: str
    minutes: float

    @property
    def name(self) -> str:
        return Path(self.config).stem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", nargs="+", metavar="CONFIG=MINUTES")
    parser.add_argument("--data", type=Path, default=Path(".data"), help="the pack: DATA/train and DATA/val")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-run"), help="where the runs write")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every run")
    args = parser.parse_args(argv)
    try:
        if len(args.runs) > MOST_RUNS:
            raise MprnetError(f"at most {MOST_RUNS} runs fit in what a device call brings back, found {len(args.runs)}")
        runs = [parse_run(text) for text in args.runs]
        settings = run_settings(args)
        for run in runs:  # every config is checked before any GPU time is spent
            load_config(run.config, {**settings, "out_dir": str(args.work / run.name)})
    except MprnetError as error:
        print(f"gpu_run: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    print(hardware_line(), flush=True)
    reports = []
    for run in runs:  # what is done is written at once: a call stopped at its limit still brings it back
        reports.append(train_one(run, settings, args.work, args.out))
        write_summary(reports, args.work, args.out)
    print((args.out / "summary.md").read_text())
    return 0 if all(report["returncode"] == 0 for report in reports) else 1


def parse_run(text: str) -> Run:
    config, sep, minutes = text.rpartition("=")
    try:
        run = Run(config, float(minutes))
    except ValueError:
        run = Run(config, 0.0)
    if not sep or not config or not run.minutes > 0:
        raise MprnetError(f"expected CONFIG=MINUTES with MINUTES above 0, found {text!r}")
    return run


def run_settings(args: argparse.Namespace) -> dict:
    """What every run is given: the packed photos, the data workers this machine affords, and --set."""
    if not (args.data / "train").is_dir() or not (args.data / "val").is_dir():
        raise MprnetError(f"{args.data} holds no train/ and val/ folders: pack them with scripts/pack_device_data.py")
    settings = {
        "data.clean_dir": str(args.data / "train"),
        "val.dir": str(args.data / "val"),
        "data.workers": max(1, min(12, (os.cpu_count() or 2) - 2)),
    }
    return settings | parse_overrides(args.set)


def hardware_line() -> str:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU: CPU"
    return f"torch {torch.__version__}, {device}, {os.cpu_count()} CPU cores"


def train_one(run: Run, settings: dict, work: Path, out: Path) -> dict:
    """Train one config within its minutes, ship its best weights where they beat its start, and report."""
    budget = run.minutes * 60
    values = {**settings, "time_budget_s": budget, "out_dir": str(work / run.name)}
    command = [sys.executable, "-m", "mprnet", "train", run.config]
    command += [part for key, value in values.items() for part in ("--set", f"{key}={json.dumps(value)}")]
    started = time.time()
    with open(work / f"{run.name}.out", "w") as console:
        try:
            returncode = subprocess.run(
                command, stdout=console, stderr=subprocess.STDOUT, timeout=budget + GRACE_S
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = -1
    report = {"run": run, "returncode": returncode, "wall_s": time.time() - started, **read_log(work / run.name)}
    best = work / run.name / "best.safetensors"
    report["shipped"] = best.exists() and report["beaten"] is not False
    if report["shipped"]:
        facts = {
            "hardware": report["hardware"],
            "wall_time": f"{report['wall_s']:.0f} s",
            "command": " ".join(sys.argv),
        }
        resave_weights(best, out / f"{run.name}.safetensors", **facts)
    return report


def read_log(run_dir: Path) -> dict:
    """From a run's log: its hardware, steps, patches/s, validation scores at the start and at the best, and
    whether it beat its starting weights."""
    try:
        record = RunRecord.read(run_dir)
    except OSError:  # the run failed before it wrote a log
        record = RunRecord([], [], [], None, None)
    start, steps = (record.starts[0] if record.starts else {}), record.steps
    score = start.get("score", "score")
    first, last = (start["step"], steps[-1]["step"]) if start and steps else (0, 0)
    return {
        "hardware": start.get("hardware", "?"),
        "schedule": start.get("schedule", "?"),
        "steps": f"{first} -> {last}" if steps else "none",
        "patches": (last - first) * start["config"]["batch_size"] if steps else 0,
        "patches_per_s": steps[-1]["patches_per_s"] if steps else None,
        "score": score,
        "start": record.start_scores[score] if record.start_scores else None,
        "best": max((validation[score] for validation in record.validations), default=None),
        "beaten": record.judged["beaten"] if record.judged else None,
    }


def write_summary(reports: list[dict], work: Path, out: Path) -> None:
    """summary.md and logs.tar.gz (with summary.json, what scripts/land_gpu_run.py reads) of the runs done so far,
    each replaced whole."""
    with atomic_path(out / "summary.md") as path:
        path.write_text(summary_page(reports))
    records = [
        {**report, "run": {"config": report["run"].config, "minutes": report["run"].minutes}} for report in reports
    ]
    (work / "summary.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "runs": records}, indent=1))
    with atomic_path(out / "logs.tar.gz") as path, tarfile.open(path, "w:gz") as archive:
        archive.add(work / "summary.json", arcname="summary.json")
        for report in reports:
            name = report["run"].name
            for file in (work / f"{name}.out", *(work / name).glob("*.json*")):
                archive.add(file, arcname=str(file.relative_to(work)))


def summary_page(reports: list[dict]) -> str:
    lines = [
        f"# GPU run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Hardware: {reports[0]['hardware'] if reports else '?'}.",
        "",
        "| config | minutes | wall s | steps | patches | patches/s | validation: start | best | shipped | schedule |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        run = report["run"]
        shipped = (
            "yes" if report["shipped"] else "no" if report["returncode"] == 0 else f"no (exit {report['returncode']})"
        )
        lines.append(
            f"| {run.name} | {run.minutes:g} | {report['wall_s']:.0f} | {report['steps']} | {report['patches']} "
            f"| {_number(report['patches_per_s'])} | {report['score']} {_number(report['start'])} "
            f"| {_number(report['best'])} | {shipped} | {report['schedule']} |"
        )
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
