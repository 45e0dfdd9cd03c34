"""The interface every degradation follows, a random choice between degradations, the per-image generator and
parameter helpers."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ..errors import DataError

Range = float | tuple[float, float]


class Degradation:
    """Turns a clean image into a degraded one with a given random generator and records what it did.

    Subclasses set `task` and `param_type` (the "type" their parameters carry) and implement `sample` (draw the
    parameters for one image: sigma, a kernel, rain layers) and `apply` (degrade an image with given parameters;
    it must depend only on them, and its generator draws only the random realisation, such as the noise field).
    `margin` is how many pixels of real context the degradation needs on each side of a patch (a blur kernel's
    radius), so that data sets can crop that much more first.
    """

    task: str = ""
    param_type: str = ""
    margin: int = 0

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """clean: float32 H x W x C in [0, 1] -> (degraded float32 H x W x C, parameters used)."""
        clean = check_image(clean)
        params = self.sample(rng, clean.shape)
        return self.apply(clean, params, rng), params

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        """The parameters for one image of shape H x W x C, with their "type"."""
        raise NotImplementedError

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        """The clean float32 H x W x C image degraded with `params`; rng draws only what is not a parameter."""
        raise NotImplementedError

    def param_types(self) -> dict[str, type]:
        """Each parameter "type" this degradation can produce, mapped to the class whose `apply` reads it."""
        return {self.param_type: type(self)}


class Identity(Degradation):
    """Leaves the image as it is: clean inputs that a restorer should pass unchanged, in training or evaluation."""

    param_type = "identity"

    def __init__(self, task: str):
        self.task = task

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        return {"type": self.param_type}

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        return np.array(clean, dtype=np.float32)


class RandomChoice(Degradation):
    """Applies one of several degradations of the same task, drawn per image with the given weights. `apply`
    finds the option again by the parameters' "type", so options that share a type must be of one class."""

    def __init__(self, options: Sequence[Degradation], weights: Sequence[float] | None = None):
        if not options:
            raise DataError("RandomChoice expects at least one degradation, found none.")
        tasks = {option.task for option in options}
        if len(tasks) != 1:
            raise DataError(f"RandomChoice expects degradations of one task, found {sorted(tasks)}.")
        given = np.ones(len(options)) if weights is None else np.asarray(weights, dtype=np.float64)
        if given.shape != (len(options),) or np.any(given < 0) or given.sum() <= 0:
            raise DataError(f"RandomChoice expects {len(options)} non-negative weights, found {list(given)}.")
        self.options = list(options)
        self.weights = given / given.sum()
        self.task = tasks.pop()
        self.margin = max(option.margin for option in options)
        self._classes: dict[str, type] = {}  # parameter type -> the class whose `apply` reads it
        self._appliers: dict[str, Degradation] = {}  # parameter type -> an option that applies it
        for option in self.options:
            for kind, cls in option.param_types().items():
                if self._classes.setdefault(kind, cls) is not cls:
                    raise DataError(
                        f"RandomChoice expects options whose parameters of one type are applied alike, "
                        f"found type {kind!r} from both {self._classes[kind].__name__} and {cls.__name__}."
                    )
                self._appliers.setdefault(kind, option)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        option = self.options[rng.choice(len(self.options), p=self.weights)]
        return option.sample(rng, shape)

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        kind = params.get("type", "")
        if kind not in self._appliers:
            raise DataError(
                f"Expected parameters of a type among {', '.join(map(repr, self._classes))}, found {kind!r}."
            )
        return self._appliers[kind].apply(clean, params, rng)

    def param_types(self) -> dict[str, type]:
        return dict(self._classes)


def seeded_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """The generator of one item of a set: `default_rng([seed, *keys])`, each str key replaced by the CRC-32 of
    its UTF-8 bytes, so that it depends only on the seed and the item's own keys (an image's name or number)."""
    words = [check_seed(seed)]
    for key in keys:
        if isinstance(key, str):
            words.append(zlib.crc32(key.encode()))
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
            words.append(int(key))
        else:
            raise DataError(f"Expected generator keys that are strings or non-negative integers, found {key!r}.")
    return np.random.default_rng(words)


def check_seed(seed: int) -> int:
    """The seed as an int, or a DataError if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"Expected a non-negative integer seed, found {seed!r}.")
    return int(seed)


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as float32 H x W x C, or a DataError saying what was found instead."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"Expected an image shaped H x W x C, found shape {array.shape}.")
    return array.astype(np.float32, copy=False)


def check_range(name: str, value: Range, low: float = 0.0, high: float = np.inf) -> tuple[float, float]:
    """A fixed value or a (min, max) pair as a validated (min, max) pair within [low, high]."""
    # Any: the value comes from a user's configuration and is checked here, whatever its type.
    pair: tuple[Any, ...] = (value, value) if np.isscalar(value) else tuple(cast("Sequence[float]", value))
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
