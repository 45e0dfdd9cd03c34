"""Seeded degradations that turn clean images into noisy, blurred or rainy ones and record their parameters."""
from __future__ import annotations

from ..errors import DataError
from .base import Degradation, Identity, RandomChoice
from .blur import MotionBlur, blur, camera_shake_kernel, linear_motion_kernel
from .noise import GaussianNoise, MixedNoise, PoissonGaussianNoise
from .rain import Rain, density_label, rain_streaks

__all__ = ["TASKS", "Degradation", "Identity", "RandomChoice", "GaussianNoise", "PoissonGaussianNoise", "MixedNoise",
           "MotionBlur", "blur", "camera_shake_kernel", "linear_motion_kernel", "Rain", "rain_streaks",
           "density_label", "make_degradation", "LEVELS"]

# Named levels per task; the first is the default. Denoising also takes a sigma, deblurring a maximum kernel size.
LEVELS = {
    "denoise": ("blind", "mixed", "poisson"),
    "deblur": ("shake", "linear", "mixed"),
    "derain": ("medium", "light", "heavy", "mixed"),
}
TASKS = tuple(LEVELS)
BLIND_SIGMA_RANGE = (0.0, 50.0)


def make_degradation(task: str, level: str | float | None = None) -> Degradation:
    """The degradation for a task at a level: denoise a sigma (0-255) or blind / mixed / poisson; deblur
    shake / linear / mixed or a maximum kernel size; derain medium / light / heavy / mixed."""
    if task not in LEVELS:
        raise DataError(f"Expected a task among {', '.join(LEVELS)}, found {task!r}.")
    level = LEVELS[task][0] if level is None else level
    number = _as_number(level)
    if number is not None and task == "denoise":
        return GaussianNoise(sigma=number)
    if number is not None and task == "deblur" and number.is_integer():
        return MotionBlur(kernel_size=(min(7, int(number)), int(number)), kind="shake")
    builders = {
        ("denoise", "blind"): lambda: GaussianNoise(sigma_range=BLIND_SIGMA_RANGE),
        ("denoise", "mixed"): lambda: MixedNoise(sigma_range=BLIND_SIGMA_RANGE),
        ("denoise", "poisson"): PoissonGaussianNoise,
        ("deblur", "shake"): lambda: MotionBlur(kind="shake"),
        ("deblur", "linear"): lambda: MotionBlur(kind="linear"),
        ("deblur", "mixed"): lambda: MotionBlur(kind="mixed"),
        ("derain", "mixed"): Rain.mixed,
        ("derain", "light"): Rain.light,
        ("derain", "medium"): Rain.medium,
        ("derain", "heavy"): Rain.heavy,
    }
    key = (task, str(level).lower())
    if key not in builders:
        numbers = {"denoise": " or a sigma", "deblur": " or a maximum kernel size", "derain": ""}[task]
        raise DataError(f"Expected a {task} level among {', '.join(LEVELS[task])}{numbers}, found {level!r}.")
    return builders[key]()


def _as_number(level: str | float) -> float | None:
    try:
        return float(level)
    except (TypeError, ValueError):
        return None
