"""`mprnet train CONFIG.yaml`: train a network; under `torchrun` on several processes or machines."""

from __future__ import annotations

import argparse
import json

import yaml

HELP = "train a restoration network or the degradation classifier from a YAML config (also under torchrun)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML training config, or a bundled one's name (e.g. denoise-tiny)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", action="store_true", help="continue the run in the config's out_dir from its last.pt"
    )
    start.add_argument(
        "--overwrite", action="store_true", help="start anew in an out_dir that holds a run, replacing its files"
    )
    parser.add_argument(
        "--init-weights",
        metavar="FILE",
        help="start from these trained weights instead of random ones: a weights file, a bundled model's name, or "
        "classifier (the bundled degradation classifier, for task diagnose)",
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
        try:
            values[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise MprnetError(f"--set {pair}: the value is not valid YAML ({problem})") from None
    return values


def run(args: argparse.Namespace) -> int:
    from ..train import load_config, train

    overrides = parse_overrides(args.set)
    if args.init_weights:
        overrides["init_weights"] = args.init_weights
    summary = train(load_config(args.config, overrides), resume=args.resume, overwrite=args.overwrite)
    line = {"step": summary["step"]}
    if summary["history"]:
        score = summary["score"]
        line |= {f"val_{score}": round(summary["history"][-1][score], 4), f"best_{score}": round(summary["best"], 4)}
    if summary["start_scores"]:
        start = summary["start_scores"][summary["score"]]
        line |= {f"start_{summary['score']}": round(start, 4), "beat_start": summary["beat_start"]}
    print(json.dumps({**line, "out_dir": summary["out_dir"]}))
    return 0
