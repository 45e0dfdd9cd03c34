"""`mprnet train CONFIG.yaml`: train a network; under `torchrun` on several processes or machines."""

from __future__ import annotations

import argparse
import json

import yaml

HELP = "train a restoration network from a YAML config (also under torchrun for several processes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML training config, or a bundled one's name (e.g. denoise-cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set steps=200 --set data.workers=4 (values are YAML)",
    )


def _overrides(pairs: list[str]) -> dict:
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

    config = load_config(args.config, _overrides(args.set))
    summary = train(config, resume=args.resume)
    if summary["history"]:
        last = summary["history"][-1]
        print(
            json.dumps(
                {
                    "step": summary["step"],
                    "val_psnr": round(last["psnr"], 3),
                    "best_psnr": round(summary["best_psnr"], 3),
                    "out_dir": summary["out_dir"],
                }
            )
        )
    else:
        print(json.dumps({"step": summary["step"], "out_dir": summary["out_dir"]}))
    return 0
