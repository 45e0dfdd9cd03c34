"""Train the bundled degradation classifier (src/mprnet/weights/classifier/degradation.safetensors) on the training
photos, degraded with every level of every task, clean photos included with and without JPEG artefacts.

    python scripts/train_classifier.py ../shared/data/train/bsds432 [--examples 24000] [--steps 5000] [--out PATH]
        [--start WEIGHTS --lr 5e-4]   (fine-tune a classifier instead of training one from random weights)

Prints how long making the examples and training took, and the accuracy on held-out examples of the same photos.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mprnet.diagnose import WEIGHTS, load_classifier, make_training_set, save_classifier, train_classifier
from mprnet.errors import CheckpointError
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.models.degradation_classifier import DegradationClassifier

TRAIN_SEED, HELD_OUT_SEED = 101, 202


def examples(folder: Path, count: int, seed: int, workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The examples made in `workers` processes, each its own share with its own seed."""
    shares = [count // workers + (index < count % workers) for index in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_examples, [folder] * workers, shares, [seed * 1000 + index for index in range(workers)]))
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]


def _examples(folder: Path, count: int, seed: int):
    photos = [read_rgb(path) for path in image_files(folder)]
    return make_training_set(photos, count, seed)


def classifier(parser: argparse.ArgumentParser, path: Path) -> DegradationClassifier:
    """The classifier in the weights file, or the parser's error (one line, exit status 2) where it is not one."""
    try:
        return load_classifier(path)
    except CheckpointError as error:
        parser.error(str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clean_dir", type=Path, help="training photos, e.g. ../shared/data/train/bsds432")
    parser.add_argument("--examples", type=int, default=24000)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--start", type=Path, help="classifier weights to fine-tune (default: random weights)")
    parser.add_argument("--lr", type=float, default=2e-3, help="the learning rate, decayed by a cosine")
    args = parser.parse_args()
    start_network = None if args.start is None else classifier(parser, args.start)
    start = time.perf_counter()
    patches, labels, sigmas = examples(args.clean_dir, args.examples, TRAIN_SEED, args.workers)
    held_patches, held_labels, _ = examples(args.clean_dir, 2000, HELD_OUT_SEED, args.workers)
    made = time.perf_counter() - start
    network = train_classifier(patches, labels, sigmas, args.steps, start=start_network, lr=args.lr)
    trained = time.perf_counter() - start - made
    with torch.no_grad():
        logits, _ = network(torch.from_numpy(held_patches).permute(0, 3, 1, 2).float() / 255.0)
    accuracy = float((logits.argmax(1).numpy() == held_labels).mean())
    metadata = {
        "examples": args.examples,
        "steps": args.steps,
        **({"fine_tuned_from": str(args.start), "lr": args.lr} if args.start else {}),
        "training_photos": str(args.clean_dir),
        "held_out_patch_accuracy": round(accuracy, 4),
        "hardware": f"{cpu_name()}, {torch.get_num_threads()} threads",
        "minutes": round((made + trained) / 60, 1),
    }
    save_classifier(network, args.out, metadata)
    print(
        f"{args.examples} examples in {made / 60:.1f} min, {args.steps} steps in {trained / 60:.1f} min on "
        f"{cpu_name()}; held-out patch accuracy {accuracy:.1%}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
