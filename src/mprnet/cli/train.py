"""`mprnet train CONFIG.yaml`: train a network; under `torchrun` on several processes or machines."""

from __future__ import annotations

import argparse
import json

import yaml

HELP = "train a restoration network or the degradation classifier from a YAML config (also under torchrun)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML training config, or a bundled one's name (e.g. denoise-cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    parser.add_argument(
        "--init-weights",
        metavar="FILE",
        help="start from these trained weights (a weights file or a bundled model's name) instead of random ones",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set steps=200 --set data.workers=4 (values are YAML)",
    )


def parse_overrides(pairs: list[str]) -> dict:
    from ..errors import MprnetError

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MprnetError(f"--set expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = yaml.safe_load(value)
    return values


def run(args: argparse.Namespace) -> int:
    from ..train import load_config, train

    overrides = parse_overrides(args.set)
    if args.init_weights:
        overrides["init_weights"] = args.init_weights
    summary = train(load_config(args.config, overrides), resume=args.resume)
    line = {"step": summary["step"]}
    if summary["history"]:
        score = summary["score"]
        line |= {f"val_{score}": round(summary["history"][-1][score], 4), f"best_{score}": round(summary["best"], 4)}
    if summary["start_scores"]:
        start = summary["start_scores"][summary["score"]]
        line |= {f"start_{summary['score']}": round(start, 4), "beat_start": summary["beat_start"]}
    print(json.dumps({**line, "out_dir": summary["out_dir"]}))
    return 0
