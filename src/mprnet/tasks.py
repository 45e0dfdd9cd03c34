"""The tasks, one row each: what degrades an image for it (named levels, or a number), how its results are scored,
what the demo shows, what the study runs and which paired layouts belong to it. Every front end reads this table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .degrade import CameraNoise, Degradation, GaussianNoise, MixedNoise, MotionBlur, PoissonGaussianNoise, Rain
from .errors import DataError
from .metrics import noise_sigma, sharpness

BLIND_SIGMA_RANGE = (0.0, 50.0)


@dataclass(frozen=True)
class NumberLevel:
    """A level given as a number: what the number is, and the degradation it makes (None: not that kind of
    number)."""

    meaning: str
    make: Callable[[float], Degradation | None]


@dataclass(frozen=True)
class StudyCondition:
    """One synthetic column of the study: a slug for its files, a title, and its degradation."""

    slug: str
    title: str
    make: Callable[[], Degradation]


@dataclass(frozen=True)
class NoReferenceMeasure:
    """What a real degraded photo, which has no clean reference, is measured by: a name, a unit and the measure."""

    name: str
    unit: str
    measure: Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Task:
    name: str
    #: What a degraded input is called in tables ("noisy").
    degraded_name: str
    #: Named levels, the default first; each makes a fresh degradation.
    levels: dict[str, Callable[[], Degradation]]
    number_level: NumberLevel | None
    #: The protocol of the task's benchmarks (8-bit images): `mprnet eval` and training validation.
    benchmark_protocol: str
    #: How float images are compared in memory (the demo, the server's reference, the study's synthetic columns).
    comparison_protocol: str
    #: The `open_paired` layouts whose pairs are of this task.
    paired_layouts: tuple[str, ...]
    demo_degradation: str
    demo: Callable[[], Degradation]
    study_conditions: tuple[StudyCondition, ...]
    #: The classic methods of the study's table, given what they need (the true sigma or kernel).
    study_classics: tuple[str, ...]
    #: How `mprnet demo --real` measures real photos of this task before and after (None: by eye only).
    no_reference_measure: NoReferenceMeasure | None
    #: The classic method (given the classifier's noise level) that `--task auto` restores black-and-white photos
    #: of this task with while the bundled model has not learned them (`learned_gray`): the bundled denoiser,
    #: trained on colour noise only, gains 0.3 dB on gray photos at sigma 15-25, msdct 5-6 dB.
    gray_method: str | None = None

    @property
    def default_level(self) -> str:
        return next(iter(self.levels))

    def level_choices(self) -> str:
        """What a level of this task may be, in words: "blind, mixed, poisson or a sigma (0-255)"."""
        numbers = f" or {self.number_level.meaning}" if self.number_level else ""
        return ", ".join(self.levels) + numbers


def _shake_up_to(size: float) -> MotionBlur | None:
    return MotionBlur(kernel_size=(min(7, int(size)), int(size)), kind="shake") if size.is_integer() else None


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task(
            "denoise",
            "noisy",
            levels={
                "blind": lambda: GaussianNoise(sigma_range=BLIND_SIGMA_RANGE),
                # Luminance noise too: the bundled denoiser, trained without it, gained 0.3-0.6 dB on it.
                "mixed": lambda: MixedNoise(sigma_range=BLIND_SIGMA_RANGE, luma_share=0.2),
                "poisson": PoissonGaussianNoise,
                "camera": CameraNoise,
            },
            number_level=NumberLevel("a sigma (0-255)", lambda sigma: GaussianNoise(sigma=sigma)),
            benchmark_protocol="sidd",
            comparison_protocol="rgb",
            paired_layouts=("sidd",),
            demo_degradation="Gaussian noise, sigma 25",
            demo=lambda: GaussianNoise(sigma=25),
            study_conditions=tuple(
                StudyCondition(
                    f"denoise-sigma{sigma}",
                    f"Denoising, Gaussian noise sigma {sigma}",
                    functools.partial(GaussianNoise, sigma=sigma),
                )
                for sigma in (10, 20, 40)
            ),
            study_classics=("ffdnet", "bm3d", "msdct", "dct"),
            no_reference_measure=NoReferenceMeasure("estimated noise sigma", "0-255", noise_sigma),
            gray_method="msdct",
        ),
        Task(
            "deblur",
            "blurry",
            levels={
                "shake": lambda: MotionBlur(kind="shake"),
                "linear": lambda: MotionBlur(kind="linear"),
                "mixed": lambda: MotionBlur(kind="mixed"),
                "camera": MotionBlur.camera,
            },
            number_level=NumberLevel("a maximum kernel size", _shake_up_to),
            benchmark_protocol="gopro",
            comparison_protocol="rgb",
            paired_layouts=("gopro",),
            demo_degradation="camera shake, kernels 7-31 px, 1% noise",
            demo=lambda: MotionBlur(kernel_size=(7, 31)),
            study_conditions=(
                StudyCondition(
                    "deblur-shake",
                    "Deblurring, camera shake (kernels 7-31 px, 1% noise)",
                    lambda: MotionBlur(kernel_size=(7, 31)),
                ),
            ),
            study_classics=("l0", "wiener", "tv"),
            no_reference_measure=NoReferenceMeasure("sharpness (mean gradient)", "0-255 per pixel", sharpness),
        ),
        Task(
            "derain",
            "rainy",
            levels={"medium": Rain.medium, "light": Rain.light, "heavy": Rain.heavy, "mixed": Rain.mixed},
            number_level=None,
            benchmark_protocol="rain100h",
            comparison_protocol="y",
            paired_layouts=("rain",),
            demo_degradation="synthetic heavy rain",
            demo=Rain.heavy,
            study_conditions=tuple(
                StudyCondition(
                    f"derain-{level}", f"Deraining, synthetic {level} rain (Y channel)", getattr(Rain, level)
                )
                for level in ("light", "heavy")
            ),
            study_classics=(),
            no_reference_measure=None,
        ),
    ]
}
TASK_NAMES = tuple(TASKS)


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"Expected a task among {', '.join(TASKS)}, found {name!r}.") from None


def task_of_layout(layout: str) -> str | None:
    """The task whose pairs come in a paired layout (`open_paired`'s names), if one does."""
    return next((task.name for task in TASKS.values() if layout in task.paired_layouts), None)


def make_degradation(task: str, level: str | float | None = None) -> Degradation:
    """The degradation for a task at a level: a named level of the task's table (None: its default), or a number
    where the task takes one (denoise a sigma on the 0-255 scale, deblur a maximum kernel size)."""
    row = get_task(task)
    level = row.default_level if level is None else level
    number = _as_number(level)
    if number is not None and row.number_level is not None:
        made = row.number_level.make(number)
        if made is not None:
            return made
    make = row.levels.get(str(level).lower())
    if make is None:
        raise DataError(f"Expected a {task} level among {row.level_choices()}, found {level!r}.")
    return make()


def describe_levels() -> str:
    """The levels of every task, for help texts."""
    return "; ".join(f"{task.name}: {task.level_choices()}" for task in TASKS.values())


def _as_number(level: str | float) -> float | None:
    try:
        return float(level)
    except (TypeError, ValueError):
        return None
