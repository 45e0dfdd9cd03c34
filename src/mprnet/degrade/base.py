"""The interface every degradation follows, a random choice between degradations, and parameter helpers."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DataError

Range = float | tuple[float, float]


class Degradation:
    """Turns a clean image into a degraded one with a given random generator and records what it did.

    Subclasses set `task` and implement `degrade`; `margin` is how many pixels of real context the degradation
    needs on each side of a patch (a blur kernel's radius), so that data sets can crop that much more first.
    """

    task: str = ""
    margin: int = 0

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """clean: float32 H x W x C in [0, 1] -> (degraded float32 H x W x C, parameters used)."""
        return self.degrade(check_image(clean), rng)

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


class Identity(Degradation):
    """Leaves the image as it is: clean inputs that a restorer should pass unchanged, in training or evaluation."""

    def __init__(self, task: str):
        self.task = task

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        return clean.copy(), {}


class RandomChoice(Degradation):
    """Applies one of several degradations of the same task, drawn per image with the given weights."""

    def __init__(self, options: Sequence[Degradation], weights: Sequence[float] | None = None):
        if not options:
            raise DataError("RandomChoice expects at least one degradation, found none.")
        tasks = {option.task for option in options}
        if len(tasks) != 1:
            raise DataError(f"RandomChoice expects degradations of one task, found {sorted(tasks)}.")
        weights = np.ones(len(options)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(options),) or np.any(weights < 0) or weights.sum() <= 0:
            raise DataError(f"RandomChoice expects {len(options)} non-negative weights, found {list(weights)}.")
        self.options = list(options)
        self.weights = weights / weights.sum()
        self.task = tasks.pop()
        self.margin = max(option.margin for option in options)

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        option = self.options[rng.choice(len(self.options), p=self.weights)]
        return option.degrade(clean, rng)


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as float32 H x W x C, or a DataError saying what was found instead."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"Expected an image shaped H x W x C, found shape {array.shape}.")
    return array.astype(np.float32, copy=False)


def check_range(name: str, value: Range, low: float = 0.0, high: float = np.inf) -> tuple[float, float]:
    """A fixed value or a (min, max) pair as a validated (min, max) pair within [low, high]."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    try:
        first, last = (float(bound) for bound in pair)
    except (TypeError, ValueError):
        raise DataError(f"{name} expects a number or a (min, max) pair, found {value!r}.") from None
    if not (low <= first <= last <= high):
        raise DataError(f"{name} expects values with {low} <= min <= max <= {high}, found {value!r}.")
    return first, last


def draw(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    """A value drawn uniformly from (min, max); exactly min when both are equal."""
    first, last = bounds
    return first if first == last else float(rng.uniform(first, last))
