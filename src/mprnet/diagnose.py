"""What is wrong with a photo: the bundled degradation classifier on several full-resolution crops, its decision
(leave the photo alone, or the task that restores it) and how sure it is. How the classifier is trained on the
tasks' own degradations is `mprnet.train.classifier`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError
from .io import to_rgb
from .models.degradation_classifier import CLASSES, PATCH, DegradationClassifier

# Apart from the restoration models (weights/*.safetensors), which `bundled_models` lists.
WEIGHTS = Path(__file__).parent / "weights" / "classifier" / "degradation.safetensors"
#: Below this probability of its most likely class, the decision is "unsure": the photo is left alone.
CONFIDENCE = 0.6
#: The crops looked at per photo: up to this many, on a grid over the whole image.
CROPS = 25
UNSURE = "unsure"
#: The task that may follow each task, where the classifier finds its degradation in the first task's result. Only
#: deraining after denoising measured a gain (noisy rainy photos) without a false second step on photos with one
#: degradation: denoised and derained photos look soft enough to be taken for blurred, and a second deblurring lost
#: 0.4 dB on average on photos denoised from sigma 25-35 and 2.4 dB on derained ones with light rain, while it gained
#: 0.7 dB at most on blurred noisy photos (benchmarks/auto_steps.py, docs/results/auto_steps.txt).
SECOND_STEPS = {"denoise": ("derain",)}
#: A photo the classifier takes for blurred is left alone where a blur kernel estimated from it is at least this
#: concentrated (the largest entry's share): soft but sharp photos (smooth fruit, a pencil drawing) look blurred to
#: the classifier, while their kernel stays near a single pixel and blur spreads it. The value leaves at most 5% of
#: camera-blurred training photos alone (scripts/calibrate_sharp_kernel.py).
SHARP_KERNEL = 0.24
#: Kernels are estimated on the KERNEL_CROPS most textured crops of KERNEL_CROP pixels (full resolution), at most
#: KERNEL_SIZE pixels wide, and the sharpest one speaks for the photo: camera shake blurs a whole photo alike, while
#: a soft clean photo is sharp somewhere (McMaster18's 15.png: its most textured crop, apples on a wooden table, reads
#: as blurred, kernel peak 0.14, its grapes as sharp, 0.32).
KERNEL_CROP, KERNEL_SIZE, KERNEL_CROPS = 256, 15, 3
#: A photo the classifier takes for blurred is left alone ("unsure") where even its most textured crop holds less
#: detail than this (mean absolute gradient, 0-255): a smooth sky, fog or a bokeh background holds nothing a blur
#: could be read from, nor anything deblurring could sharpen. 2% of camera-blurred training photos hold less, none
#: blurred by shake or linear motion (scripts/calibrate_sharp_kernel.py).
BLUR_DETAIL = 2.5


@dataclass(frozen=True)
class Diagnosis:
    """The classifier's view of one photo: each class's probability (clean and the tasks), the noise level it
    estimates (0-255), and the decision: a task, "clean" (leave it) or "unsure" (leave it, not sure enough)."""

    probabilities: dict[str, float]
    noise_sigma: float
    #: The largest share of the blur kernel estimated from the photo (`kernel_peak`), where the classifier's likeliest
    #: class is blur; None elsewhere.
    kernel_peak: float | None = None
    #: The detail of the photo's most textured crop (`detail`), where the classifier's likeliest class is blur.
    detail: float | None = None
    #: The diagnosis of the photo as the first task restored it, where it found another degradation to undo.
    then: Diagnosis | None = None

    @property
    def likeliest(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.likeliest]

    @property
    def sharp(self) -> bool:
        """Whether the classifier's blur is overruled: the kernel estimated from the photo is a sharp photo's."""
        return self.likeliest == "deblur" and self.kernel_peak is not None and self.kernel_peak >= SHARP_KERNEL

    @property
    def smooth(self) -> bool:
        """Whether the classifier's blur cannot be told: the photo holds too little detail (`BLUR_DETAIL`)."""
        return self.likeliest == "deblur" and self.detail is not None and self.detail < BLUR_DETAIL

    @property
    def decision(self) -> str:
        if self.confidence < CONFIDENCE or self.smooth:
            return UNSURE
        return "clean" if self.sharp else self.likeliest

    @property
    def task(self) -> str | None:
        """The task to restore with, or None when the photo is to be left alone."""
        return None if self.decision in ("clean", UNSURE) else self.decision

    @property
    def steps(self) -> list[str]:
        """The tasks applied, in order: none, one, or the first and the one found in its result."""
        return [] if self.task is None else [self.task, *([self.then.decision] if self.then else [])]

    @property
    def followers(self) -> tuple[str, ...]:
        """The tasks that may follow this diagnosis's own (`SECOND_STEPS`); none: its result need not be looked at."""
        return SECOND_STEPS.get(str(self.task), ())

    def second_task(self, after: Diagnosis) -> str | None:
        """The task to apply after this diagnosis's own, given the diagnosis of what it restored (None: stop)."""
        return after.task if after.task in self.followers else None

    def followed_by(self, after: Diagnosis) -> Diagnosis:
        """This diagnosis with the second task that `after` calls for, if any."""
        return dataclasses.replace(self, then=after) if self.second_task(after) else self

    def summary(self) -> str:
        """One line: the decision, how sure, the noise level where noise was found, and any second task."""
        odds = ", ".join(f"{name} {share:.0%}" for name, share in self.probabilities.items())
        noise = f"; noise sigma about {self.noise_sigma:.1f}" if self.likeliest == "denoise" else ""
        kernel = "" if self.kernel_peak is None else f"; blur kernel peak {self.kernel_peak:.2f}"
        sharp = f" (sharp, at least {SHARP_KERNEL:.2f}: the blur is overruled)" if self.sharp else ""
        if self.smooth:
            sharp = f"; too little detail to tell blur ({self.detail:.2f}, under {BLUR_DETAIL:g})"
        then = f"; then {self.then.decision} ({self.then.confidence:.0%} sure)" if self.then else ""
        return f"{self.decision} ({odds}){noise}{kernel}{sharp}{then}"

    def record(self) -> dict:
        return {
            "decision": self.decision,
            "task": self.task,
            "steps": self.steps,
            "confidence": round(self.confidence, 4),
            "probabilities": _rounded(self.probabilities),
            "noise_sigma": round(self.noise_sigma, 2),
            **({"kernel_peak": round(self.kernel_peak, 4)} if self.kernel_peak is not None else {}),
            **({"detail": round(self.detail, 3)} if self.detail is not None else {}),
            **({"then_probabilities": _rounded(self.then.probabilities)} if self.then else {}),
        }


def _rounded(probabilities: dict[str, float]) -> dict[str, float]:
    return {name: round(share, 4) for name, share in probabilities.items()}


@functools.lru_cache(maxsize=1)
def load_classifier(path: Path = WEIGHTS) -> DegradationClassifier:
    from .checkpoint import read_weights

    if not path.exists():
        lacking = "; this installation lacks its weights" if path == WEIGHTS else ""
        raise CheckpointError(f"no degradation classifier at {path}{lacking}")
    network = DegradationClassifier()
    try:
        network.load_state_dict(read_weights(path)[0])
    except RuntimeError as error:  # weights of another network
        raise CheckpointError(
            f"{path}: not a degradation classifier's weights ({str(error).splitlines()[0]})"
        ) from None
    return network.eval()


def diagnose(pixels: np.ndarray, network: DegradationClassifier | None = None, check_blur: bool = True) -> Diagnosis:
    """The diagnosis of a float32 H x W x C image in [0, 1] (gray is repeated, alpha dropped), from up to CROPS
    full-resolution crops of PATCH pixels spread over it, and the median of their noise levels; with `check_blur`,
    where blur is likeliest, the photo's blur kernel peak too (`SHARP_KERNEL`; leave it out where blur would not
    be acted on)."""
    return diagnosis_from(pixels, *crop_evidence(pixels, network), check_blur=check_blur)


def diagnosis_from(
    pixels: np.ndarray, log_probabilities: torch.Tensor, sigmas: torch.Tensor, check_blur: bool = True
) -> Diagnosis:
    """The diagnosis of an image from its crops' evidence (`crop_evidence`), as `diagnose` makes it."""
    diagnosis = Diagnosis(combine_crops(log_probabilities), max(0.0, float(sigmas.median())))
    if not check_blur or diagnosis.likeliest != "deblur":
        return diagnosis
    diagnosis = dataclasses.replace(diagnosis, detail=detail(pixels))
    return diagnosis if diagnosis.smooth else dataclasses.replace(diagnosis, kernel_peak=kernel_peak(pixels))


def detail(pixels: np.ndarray) -> float:
    """The texture (`texture`) of the image's most textured crop on the grid `most_textured` looks at."""
    image = to_rgb(pixels)
    return texture(most_textured(image, min(KERNEL_CROP, *image.shape[:2]), 1)[0])


def kernel_peak(pixels: np.ndarray) -> float | None:
    """The largest blur kernel peak of the image's most textured crops (`crop_kernel_peaks`), which are looked at
    until one is sharp (at least SHARP_KERNEL); near 1: a sharp photo. None for an image too small to tell."""
    peaks = []
    for peak in crop_kernel_peaks(pixels):
        peaks.append(peak)
        if peak >= SHARP_KERNEL:
            break
    return max(peaks, default=None)


def crop_kernel_peaks(pixels: np.ndarray) -> Iterator[float]:
    """For each of the KERNEL_CROPS most textured full-resolution crops of the image, the most textured first: the
    largest entry's share of the blur kernel that the quick l0-prior estimator (`kernel_probe`) finds in it; nothing for
    an image too small to tell (under four kernel widths)."""
    from .kernel_probe import probe_kernel

    image = to_rgb(pixels)
    if min(image.shape[:2]) < 4 * KERNEL_SIZE:
        return
    for crop in most_textured(image, min(KERNEL_CROP, *image.shape[:2]), KERNEL_CROPS):
        kernel = probe_kernel(crop, KERNEL_SIZE)
        yield float(kernel.max() / kernel.sum())


def most_textured(image: np.ndarray, size: int, count: int) -> list[np.ndarray]:
    """Of the size x size crops on a 3 x 3 grid over the image (`crops`), in gray, the `count` with the largest
    `texture`, the most textured first."""
    grays = [crop.mean(axis=2, dtype=np.float32) for crop in crops(image, 9, size)]
    return sorted(grays, key=texture, reverse=True)[:count]


def texture(gray: np.ndarray) -> float:
    """The mean absolute difference of neighbouring pixels of a gray image, down and across, on the 0-255 scale."""
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()) * 255


def crop_evidence(
    pixels: np.ndarray, network: DegradationClassifier | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per crop of the image (`crops`), the classifier's log-probabilities of the classes and its noise level."""
    network = load_classifier() if network is None else network
    patches = torch.from_numpy(np.stack([patch.transpose(2, 0, 1) for patch in crops(to_rgb(pixels))]))
    with torch.no_grad():
        logits, sigmas = network(patches)
    return torch.log_softmax(logits.float(), dim=1), sigmas.float()


def combine_crops(log_probabilities: torch.Tensor) -> dict[str, float]:
    """Each class's probability for the whole photo. The crops' evidence adds up: their log-probabilities are
    summed, so that a few telling crops (rain streaks in one corner, texture that shows blur) outweigh many flat ones
    that cannot tell clean from blurred; the sum is divided by the square root of the count, as the crops of one
    photo are far from independent."""
    evidence = log_probabilities.sum(0) / len(log_probabilities) ** 0.5
    return {name: float(share) for name, share in zip(CLASSES, torch.softmax(evidence, dim=0))}


def crops(image: np.ndarray, count: int = CROPS, size: int = PATCH) -> list[np.ndarray]:
    """Up to `count` size x size crops on a grid over the image (a smaller image is mirrored up to the size)."""
    rows, cols = image.shape[:2]
    if rows < size or cols < size:
        image = np.pad(image, ((0, max(0, size - rows)), (0, max(0, size - cols)), (0, 0)), mode="symmetric")
        rows, cols = image.shape[:2]
    side = max(1, int(np.sqrt(count)))
    tops = np.linspace(0, rows - size, side).round().astype(int)
    lefts = np.linspace(0, cols - size, side).round().astype(int)
    unique = dict.fromkeys((top, left) for top in tops for left in lefts)
    return [image[top : top + size, left : left + size] for top, left in unique]
