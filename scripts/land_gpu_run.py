"""Land what a GPU run brought back (scripts/gpu_run.sh's OUT: <config>.safetensors, summary.md, logs.tar.gz): each
shipped model becomes the bundled model it continues (fp16, its card's facts kept or made), each run's log is
appended to its model's log in docs/training/, and each run gets a row in the campaign's table there. Then prints
what to run to refresh the cards and the study.

    python scripts/land_gpu_run.py FILES [--root REPOSITORY]
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

from mprnet.checkpoint import bundled_models, read_metadata, resave_weights
from mprnet.errors import MprnetError
from mprnet.train import load_config

ROOT = Path(__file__).resolve().parents[1]
#: The line after which the campaign table's rows are added (its header's rule).
TABLE_RULE = "|---|---|---|---|---|---|---|---|---|"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, help="the folder holding what the GPU call brought back")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to land in")
    args = parser.parse_args(argv)
    try:
        landed = land(args.files, args.root)
    except MprnetError as error:
        print(f"land_gpu_run: {error}", file=sys.stderr)
        return 2
    for line in landed:
        print(line)
    print(
        "then: mprnet study --data ../shared/data/val/mcmaster18 --out docs/study; python scripts/write_model_cards.py"
    )
    return 0


def land(files: Path, root: Path) -> list[str]:
    archive_path = files / "logs.tar.gz"
    if not archive_path.is_file():
        raise MprnetError(f"{files} holds no logs.tar.gz: give the folder of a GPU run's files")
    with tarfile.open(archive_path) as archive:
        logs = {member.name: archive.extractfile(member).read().decode() for member in archive if member.isfile()}
    if "summary.json" not in logs:
        raise MprnetError(f"{archive_path} holds no summary.json: it was written by an older scripts/gpu_run.py")
    summary = json.loads(logs["summary.json"])
    weights_dir, training = root / "src" / "mprnet" / "weights", root / "docs" / "training"
    landed, rows = [], []
    # A run lands as the bundled model it continues; a peer's first run as its config's name less `-peer`.
    for report in summary["runs"]:
        config = report["run"]["config"]
        stem, start = Path(config).stem, load_config(config).init_weights
        name = start if start in bundled_models() else stem.removesuffix("-peer")
        rows.append(table_row(summary["date"], name, report))
        if not report["shipped"]:
            why = f"exit {report['returncode']}" if report["returncode"] else "no better model"
            landed.append(f"{stem}: not shipped ({why})")
            continue
        target = weights_dir / f"{name}.safetensors"
        kept = read_metadata(target) if target.exists() else {}
        facts = {"name": name, "summary": kept.get("summary") or f"{stem}, trained by the campaign (docs/training)"}
        resave_weights(files / f"{stem}.safetensors", target, **facts)
        with open(training / f"{name}_log.jsonl", "a") as log:
            log.write(logs.get(f"{stem}/log.jsonl", ""))
        landed.append(
            f"{stem}: bundled as {target.relative_to(root)} ({report['score']} {report['start']} -> {report['best']})"
        )
        if start is None:
            landed.append(f"  set init_weights: {name} in {stem}.yaml, so that its next run continues it")
    add_rows(training / "README.md", rows)
    return landed


def table_row(date: str, name: str, report: dict) -> str:
    steps = report["steps"]
    before = "-" if report["start"] is None else f"{report['start']:.2f}"
    after = "-" if report["best"] is None else f"{report['best']:.2f}"
    shipped = "yes" if report["shipped"] else "no"
    return (
        f"| {date} | {report['hardware']} | {report['run']['minutes']:g} | {name} | {steps} | "
        f"{report['patches']:,} | {before} ({report['score']}) | {after} | {shipped} |"
    )


def add_rows(readme: Path, rows: list[str]) -> None:
    """The rows, added at the end of the campaign table."""
    lines = readme.read_text().splitlines()
    if TABLE_RULE not in lines:
        raise MprnetError(f"{readme} has no campaign table (a line {TABLE_RULE})")
    end = lines.index(TABLE_RULE) + 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    readme.write_text("\n".join([*lines[:end], *rows, *lines[end:]]) + "\n")


if __name__ == "__main__":
    sys.exit(main())
