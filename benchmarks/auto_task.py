"""How well `--task auto` decides, on photos no training saw, degraded with seeds the classifier never saw: the
confusion matrix of true degradation against decision, the noise-level error for Gaussian sigma 5-50, and what the
decision costs on a 1-megapixel photo against giving the right task by hand.

    python benchmarks/auto_task.py [VAL_DIR] [--no-timing] [--classifier WEIGHTS] [--other-rules]
        [--clean-photos DIR]
    (VAL_DIR e.g. ../shared/data/val/mcmaster18; WEIGHTS: a classifier that scripts/train_classifier.py wrote,
    instead of the bundled one; DIR e.g. ../shared/data/photos: with it, every clean photo goes through the whole
    pipeline of `--task auto`, whole and as 256-px crops, and the share it leaves byte for byte is printed)

The photos: scikit-image's sample photographs and, when given, the validation folder's (whole images); the rows
named "gray" make them black and white first.
"""

from __future__ import annotations

import argparse
import itertools
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from mprnet.degrade import CameraNoise, GaussianNoise, seeded_rng
from mprnet.diagnose import UNSURE, Diagnosis, crop_evidence, crops, diagnose, diagnosis_from, load_classifier
from mprnet.errors import CheckpointError
from mprnet.infer import cpu_name
from mprnet.io import ImageData, image_files, read_rgb, to_gray
from mprnet.models.degradation_classifier import CLASSES, DegradationClassifier
from mprnet.pipeline import restore_image
from mprnet.restorers import AutoRestorer, get_restorer
from mprnet.tasks import make_degradation

from timing import interleaved_medians

SEED = 987_654  # never used to make the classifier's examples
SIGMAS = (5, 10, 15, 25, 35, 50)
CONDITIONS = {
    "clean": ("clean", None),
    **{f"gaussian {sigma}": ("denoise", partial(GaussianNoise, sigma=sigma)) for sigma in SIGMAS},
    "poisson": ("denoise", partial(make_degradation, "denoise", "poisson")),
    "camera": ("denoise", CameraNoise),
    **{
        f"blur {level}": ("deblur", partial(make_degradation, "deblur", level))
        for level in ("shake", "linear", "camera")
    },
    **{
        f"rain {level}": ("derain", partial(make_degradation, "derain", level))
        for level in ("light", "medium", "heavy")
    },
}
#: The conditions measured on black-and-white photos too: their noise is the same in the three channels.
GRAY = ("clean", "gaussian 5", "gaussian 15", "gaussian 25", "gaussian 50", "camera", "blur camera", "rain light")
CONDITIONS.update({f"gray {condition}": CONDITIONS[condition] for condition in GRAY})


def photos(val_dir: Path | None) -> dict[str, np.ndarray]:
    from skimage import data

    found = {name: getattr(data, name)().astype(np.float32) / 255 for name in ("astronaut", "chelsea", "coffee")}
    if val_dir is not None:
        found.update({path.name: read_rgb(path) for path in image_files(val_dir)})
    return found


class Seen(NamedTuple):
    """What the benchmark keeps of one degraded photo: the diagnosis, the classifier's log-probabilities per crop
    (for `--other-rules`) and the standard deviation of what the degradation changed (0-255)."""

    diagnosis: Diagnosis
    log_probabilities: torch.Tensor
    change: float


Evidence = dict[tuple[str, str], Seen]


def evidences(images: dict[str, np.ndarray], network: DegradationClassifier | None = None) -> Evidence:
    """Per condition and photo, what the benchmark keeps of it (`Seen`)."""
    found = {}
    for condition, (_, make) in CONDITIONS.items():
        for name, photo in images.items():
            clean = to_gray(photo) if condition.startswith("gray ") else photo
            degraded = clean if make is None else make()(clean, seeded_rng(SEED, condition, name))[0]
            pixels = np.clip(degraded, 0, 1).astype(np.float32)
            log_probabilities, sigmas = crop_evidence(pixels, network)
            diagnosis = diagnosis_from(pixels, log_probabilities, sigmas)
            found[condition, name] = Seen(diagnosis, log_probabilities, 255 * float(np.std(pixels - clean)))
    return found


def decisions(evidence: Evidence) -> tuple[dict[str, dict[str, int]], dict[str, list[float]]]:
    """Per condition, how often each decision was made; and |estimated - true| sigma for the Gaussian conditions,
    of colour and of gray photos."""
    matrix = {condition: dict.fromkeys((*CLASSES, UNSURE), 0) for condition in CONDITIONS}
    sigma_errors: dict[str, list[float]] = {"colour": [], "gray": []}
    for (condition, _), (diagnosis, _, _) in evidence.items():
        matrix[condition][diagnosis.decision] += 1
        if "gaussian" in condition:
            kind = "gray" if condition.startswith("gray") else "colour"
            sigma_errors[kind].append(abs(diagnosis.noise_sigma - float(condition.split()[-1])))
    return matrix, sigma_errors


def print_other_rules(evidence: Evidence) -> None:
    """How other ways of adding up the crops' evidence (mean instead of the scaled sum, a prior for clean, another
    confidence threshold), without the blur kernel's check, trade clean photos left alone against degradations
    found."""
    print(
        "other rules, the classifier alone (no kernel check): clean left alone / each group found / camera blur found"
    )
    for average, clean_prior, threshold in itertools.product(("sum/sqrt", "mean"), (0.0, 1.0, 3.0), (0.6, 0.8)):
        right: dict[str, list[bool]] = {}
        for (condition, _), (_, log_probabilities, _) in evidence.items():
            scores = log_probabilities.sum(0) / len(log_probabilities) ** (0.5 if average == "sum/sqrt" else 1.0)
            probabilities = torch.softmax(scores + clean_prior * torch.eye(len(CLASSES))[0], dim=0)
            decided = CLASSES[int(probabilities.argmax())] if probabilities.max() >= threshold else UNSURE
            group = CONDITIONS[condition][0]
            right.setdefault(group, []).append(decided in ("clean", UNSURE) if group == "clean" else decided == group)
            right.setdefault(condition, []).append(right[group][-1])
        groups = " ".join(f"{group} {np.mean(right[group]):.0%}" for group in CLASSES)
        print(
            f"  {average:8s} clean prior e^{clean_prior:.0f}, threshold {threshold:.0%}: {groups}, "
            f"camera blur {np.mean(right['blur camera']):.0%}"
        )


def print_missed_noise(evidence: Evidence) -> None:
    """For each noise condition, how much noise the photos not taken for noisy carry: the faintest are missed."""
    print("noisy photos not taken for noisy: the standard deviation of their noise (0-255)")
    for condition in (condition for condition, (group, _) in CONDITIONS.items() if group == "denoise"):
        missed = sorted(
            seen.change
            for (row, _), seen in evidence.items()
            if row == condition and seen.diagnosis.decision != "denoise"
        )
        if missed:
            print(f"  {condition:16s} " + " ".join(f"{change:.1f}" for change in missed))


def print_matrix(matrix: dict[str, dict[str, int]]) -> None:
    columns = (*CLASSES, UNSURE)
    print(f"{'true degradation':18s}" + "".join(f"{column:>9s}" for column in columns) + f"{'correct':>9s}")
    for condition, counts in matrix.items():
        right = counts[CONDITIONS[condition][0]] / sum(counts.values())
        print(f"{condition:18s}" + "".join(f"{counts[column]:9d}" for column in columns) + f"{right:9.0%}")
    for group in CLASSES:
        rows = [counts for condition, counts in matrix.items() if CONDITIONS[condition][0] == group]
        right = sum(counts[group] for counts in rows) / sum(sum(counts.values()) for counts in rows)
        print(f"all {group:14s} correct {right:.1%}")
    for kind in ("clean", "gray clean"):
        clean = matrix[kind]
        left = (clean["clean"] + clean[UNSURE]) / sum(clean.values())
        print(f"{kind} photos left alone (clean or unsure) {left:.1%}")


#: The photos timed, as the task given by hand would restore them; a blurred photo is the costliest to decide (its
#: blur kernel is estimated on up to `diagnose.KERNEL_CROPS` crops).
TIMED = {
    "denoise": ("Gaussian sigma 25", partial(GaussianNoise, sigma=25)),
    "deblur": ("camera blur", partial(make_degradation, "deblur", "camera")),
}


def timing() -> None:
    """Seconds to restore a noisy and a blurred 1-megapixel photo given the task, and with task auto (medians of 3
    runs, the two taking turns), and what auto decided."""
    from skimage import data

    photo = np.kron(data.astronaut().astype(np.float32) / 255, np.ones((2, 2, 1), dtype=np.float32))[:1000, :1000]
    for task, (title, make) in TIMED.items():
        degraded = np.clip(make()(photo, seeded_rng(SEED, "timing", task))[0], 0, 1).astype(np.float32)
        restorers = {name: get_restorer(name) for name in (task, "auto")}
        for restorer in restorers.values():
            restorer(degraded[:64, :64])  # loads its model
        calls = {name: partial(restorer, degraded) for name, restorer in restorers.items()}
        seconds = interleaved_medians(calls, rounds=3)
        extra = seconds["auto"] / seconds[task] - 1
        print(
            f"1000 x 1000 photo, {title}, {cpu_name()}: --task {task} {seconds[task]:.2f} s, "
            f"--task auto {seconds['auto']:.2f} s ({extra:+.1%}; auto decided {diagnose(degraded).summary()})"
        )


#: The crops of each clean photo that go through the pipeline on their own (a grid of 2 x 2, `diagnose.crops`).
CLEAN_CROPS, CLEAN_CROP = 4, 256


def print_clean_left_alone(images: dict[str, np.ndarray]) -> None:
    """Each clean photo, whole and as CLEAN_CROPS crops, through `--task auto`'s whole pipeline (the decision, then
    the no-harm check on what a restoration made): the share left as it was, and every photo that was not, or that
    only the check kept as it was. bf16 where the CPU has it, as a photographer's --precision auto."""
    auto = AutoRestorer(precision="auto")
    counts = {"whole": [0, 0], "crops": [0, 0]}
    for name, photo in images.items():
        views = {"whole": [photo], "crops": crops(photo, CLEAN_CROPS, min(CLEAN_CROP, *photo.shape[:2]))}
        for kind, pixels_list in views.items():
            for index, pixels in enumerate(pixels_list):
                restored = restore_image(ImageData(np.ascontiguousarray(pixels)), auto)
                counts[kind][0] += restored.left_alone
                counts[kind][1] += 1
                if not restored.left_alone or restored.verdict is not None:
                    where = name if kind == "whole" else f"{name} crop {index}"
                    outcome = restored.warning or f"restored ({restored.method})"
                    print(f"  {where}: {restored.diagnosis.summary()}; {outcome}")
    for kind, (left, total) in counts.items():
        print(f"clean photos left as they were by --task auto, {kind}: {left} of {total} ({left / total:.1%})")


def classifier(parser: argparse.ArgumentParser, path: Path) -> DegradationClassifier:
    """The classifier in the weights file, or the parser's error (one line, exit status 2) where it is not one."""
    try:
        return load_classifier(path)
    except CheckpointError as error:
        parser.error(str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val_dir", nargs="?", type=Path, help="more clean photos, e.g. ../shared/data/val/mcmaster18")
    parser.add_argument("--no-timing", action="store_true", help="leave out the 1-megapixel timing")
    parser.add_argument("--classifier", type=Path, help="classifier weights to judge instead of the bundled ones")
    parser.add_argument("--other-rules", action="store_true", help="also score other ways of adding up the crops")
    parser.add_argument("--clean-photos", type=Path, help="more clean photos for the whole pipeline's check")
    args = parser.parse_args()
    images = photos(args.val_dir)
    if args.clean_photos:
        print(f"clean photos through the whole pipeline ({cpu_name()}):")
        print_clean_left_alone({**images, **{path.name: read_rgb(path) for path in image_files(args.clean_photos)}})
    evidence = evidences(images, None if args.classifier is None else classifier(parser, args.classifier))
    matrix, sigma_errors = decisions(evidence)
    print(f"{len(images)} photos, {len(CONDITIONS)} conditions, seed {SEED}")
    print_matrix(matrix)
    print_missed_noise(evidence)
    for kind, errors in sigma_errors.items():
        print(f"noise sigma estimate, {kind} photos, Gaussian sigma 5-50: mean |error| {np.mean(errors):.2f}")
    if args.other_rules:
        print_other_rules(evidence)
    if not args.no_timing:
        timing()


if __name__ == "__main__":
    main()
