"""Train the bundled degradation classifier with the project's trainer (`mprnet train classifier`, the config
`src/mprnet/train/configs/classifier.yaml`) and bundle its best weights (held-out accuracy) as
src/mprnet/weights/classifier/degradation.safetensors, with what the run was: steps, examples, minutes, hardware.

    python scripts/train_classifier.py [--set KEY=VALUE ...] [--init-weights classifier] [--out PATH]
    python scripts/train_classifier.py --from-run runs/classifier [--out PATH]   (bundle a finished run)

`--set` and `--init-weights` are those of `mprnet train` (e.g. `--set steps=2000 --set lr=5.0e-4 --init-weights
classifier` fine-tunes the bundled classifier on a changed recipe).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mprnet.checkpoint import save_weights
from mprnet.cli.train import parse_overrides
from mprnet.diagnose import WEIGHTS
from mprnet.errors import MprnetError
from mprnet.train import load_config, train
from mprnet.train.classifier import read_classifier
from mprnet.train.runlog import RunRecord


def trained_run(args: argparse.Namespace) -> Path:
    """The folder of the run: trained now, or the finished one named by --from-run."""
    if args.from_run:
        return args.from_run
    overrides = parse_overrides(args.set) | ({"init_weights": args.init_weights} if args.init_weights else {})
    return Path(train(load_config("classifier", overrides))["out_dir"])


def run_facts(run: Path) -> dict:
    """What the run's log says: the best validation, its step and batch, and the minutes the run took."""
    try:
        record = RunRecord.read(run)
    except (OSError, ValueError) as error:
        raise MprnetError(f"{run}: no readable training log ({error})") from None
    if not record.validations:
        raise MprnetError(f"{run}: the run was never validated (set val.dir)")
    best = max(record.validations, key=lambda validation: validation["accuracy"])
    start = record.starts[0]
    config = start["config"]
    return {
        "steps": best["step"],
        "examples": best["step"] * config["batch_size"],
        "init_weights": config["init_weights"],
        "training_photos": config["data"]["clean_dir"],
        "held_out_patch_accuracy": round(best["accuracy"], 4),
        "held_out_sigma_error": round(best["sigma_error"], 3),
        "minutes": round((record.ended - record.began) / 60, 1),
        "hardware": start.get("hardware", "not recorded"),  # logs written before the trainer recorded it
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for mprnet train")
    parser.add_argument("--init-weights", metavar="FILE", help="as for mprnet train (`classifier`: the bundled one)")
    parser.add_argument("--from-run", type=Path, metavar="DIR", help="bundle this finished run instead of training")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    try:
        run = trained_run(args)
        if not run.is_dir():
            raise MprnetError(f"{run}: no such run folder")
        if not (run / "best.safetensors").exists():
            raise MprnetError(f"{run}: no validation beat the starting weights (or none was made): nothing bundled")
        network = read_classifier(run / "best.safetensors")
        facts = run_facts(run)
    except MprnetError as error:
        parser.error(str(error))
    save_weights(network, args.out, command=shlex.join(["python", *sys.argv]), **facts)
    print(
        f"{facts['minutes']} min on {facts['hardware']}; best held-out patch accuracy "
        f"{facts['held_out_patch_accuracy']:.1%} at step {facts['steps']}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
