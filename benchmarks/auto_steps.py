"""What `--task auto` does with photos that carry two degradations, and that it adds no second step to photos that
carry one: per condition, the steps it took (how many photos each) and the mean PSNR against the clean photo of
the input, of the first step alone, of what auto returned, and of "any second": the first step followed by whatever
the classifier finds in its result, as if every task could follow every other (whole photos, seeds the classifier
never saw).

    python benchmarks/auto_steps.py [VAL_DIR] [--count N] [--precision P]   (VAL_DIR e.g. ../shared/data/val/mcmaster18)
"""

from __future__ import annotations

import argparse
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np

from mprnet.degrade import GaussianNoise, seeded_rng
from mprnet.demo import sample_photos
from mprnet.infer import cpu_name
from mprnet.io import image_files, read_rgb
from mprnet.metrics import evaluate_pair
from mprnet.restorers import AutoRestorer
from mprnet.tasks import make_degradation

SEED = 876_543  # never used to make the classifier's examples


def _noise(sigma: float) -> partial:
    return partial(GaussianNoise, sigma=sigma)


def _level(task: str, level: str) -> partial:
    return partial(make_degradation, task, level)


#: Each condition: the degradations applied in turn.
CONDITIONS = {
    **{f"gaussian {sigma}": [_noise(sigma)] for sigma in (15, 25, 35, 50)},
    "blur shake": [_level("deblur", "shake")],
    "blur camera": [_level("deblur", "camera")],
    "rain light": [_level("derain", "light")],
    "rain medium": [_level("derain", "medium")],
    "blur shake + noise 15": [_level("deblur", "shake"), _noise(15)],
    "blur camera + noise 15": [_level("deblur", "camera"), _noise(15)],
    "rain light + noise 15": [_level("derain", "light"), _noise(15)],
    "rain medium + noise 15": [_level("derain", "medium"), _noise(15)],
}


def degrade(clean: np.ndarray, makers: list[partial], *seed: object) -> np.ndarray:
    rng = seeded_rng(SEED, *seed)
    image = clean
    for make in makers:
        image = np.clip(make()(image, rng)[0], 0, 1).astype(np.float32)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path, help="clean photos (default: scikit-image's)")
    parser.add_argument("--count", type=int, default=10, help="photos taken from the folder (default: 10)")
    parser.add_argument("--precision", default="auto", help="the restorers' precision (default: auto)")
    args = parser.parse_args()
    if args.photos is None:
        cleans = sample_photos(256)
    else:
        cleans = {path.name: read_rgb(path) for path in image_files(args.photos)[: args.count]}
    auto = AutoRestorer(precision=args.precision)
    print(f"{len(cleans)} photos, {cpu_name()}, precision {args.precision}; mean PSNR (dB, RGB) against the clean")
    for condition, makers in CONDITIONS.items():
        steps: Counter[str] = Counter()
        scores: dict[str, list[float]] = {"input": [], "first step": [], "auto": [], "any second": []}
        for name, clean in cleans.items():
            image = degrade(clean, makers, condition, name)
            diagnosis, chosen = auto.choose(image)
            first = image if chosen is None else np.clip(chosen.first(image), 0, 1)
            after = auto.decide(first)
            found = after.task if chosen is not None and after.task != diagnosis.task else None
            any_second = first if found is None else np.clip(auto.restorer_for(found)(first), 0, 1)
            output = any_second if diagnosis.second_task(after) else first  # what AutoSteps does, without rerunning
            taken = diagnosis.followed_by(after).steps if chosen is not None else [diagnosis.decision]
            left = f" (found {found})" if found and not diagnosis.second_task(after) else ""
            steps[" then ".join(taken) + left] += 1
            for label, result in zip(scores, (image, first, output, any_second)):
                scores[label].append(evaluate_pair(result, clean, "rgb")["psnr"])
        figures = "  ".join(f"{label} {np.mean(values):5.2f}" for label, values in scores.items())
        taken = ", ".join(f"{count} {sequence}" for sequence, count in steps.most_common())
        print(f"{condition:24s} {figures}   steps: {taken}", flush=True)


if __name__ == "__main__":
    main()
