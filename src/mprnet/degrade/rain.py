"""Synthetic rain: layers of drops at depths, smeared into tapered streaks along one angle and screen-blended onto
the image, with a veil of haze for heavy rain."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import Degradation, RandomChoice, Range, check_range, draw
from .blur import blur, linear_motion_kernel

# Total drop density (fraction of pixels seeding a streak, summed over layers) at which DID-MDN's density
# labels change: 0 heavy, 1 medium, 2 light. The presets' totals: light up to 0.005, medium 0.0075 to 0.0105,
# heavy above 0.02.
HEAVY_DENSITY = 0.015
MEDIUM_DENSITY = 0.006
_FWHM_PER_SIGMA = 2.3548
# The lengths of a layer's streaks, as multiples of its length, drawn with equal chances per drop.
LENGTH_FACTORS = (0.6, 1.0, 1.4)
# The presets' settings (see Rain for what each range means): calibrated by benchmarks/rain_levels.py.
LIGHT: dict = {"density": (0.003, 0.005), "length": (8, 25), "brightness": (0.4, 0.8)}
MEDIUM: dict = {
    "density": (0.003, 0.006),
    "length": (10, 30),
    "width": (1.0, 1.8),
    "brightness": (0.45, 0.8),
    "layers": 2,
    "veil": (0.0, 0.08),
}
HEAVY: dict = {
    "density": (0.0055, 0.01),
    "length": (10, 35),
    "width": (1.0, 2.2),
    "brightness": (0.45, 0.8),
    "layers": 3,
    "veil": (0.05, 0.15),
}


class Rain(Degradation):
    """Rain as the deraining benchmarks show it: 1 to 3 layers of streaks at one depth each, and for heavy rain a
    veil of accumulated rain and haze.

    The image's rain falls at one angle (degrees from vertical, drawn from `angle`), each layer deviating from it
    by at most angle_spread degrees. A layer's depth t (0 far, 1 near) sets its settings within their ranges:
    length (pixels), width (pixels, full width at half maximum) and brightness (peak streak intensity in [0, 1])
    run from their first value for far layers to their last for near ones, density (fraction of pixels seeding a
    drop) the other way, so that near streaks are long, wide and few and far ones short, faint and many. Within a
    layer, streaks differ in length (LENGTH_FACTORS) and strength, and fade at both ends as drops in motion do.
    The veil (drawn from `veil`) blends the image towards a grey airlight: rainy = (1 - veil) x + veil airlight.
    The parameters hold each layer's streaks (float32 H x W) under "streaks", the physical rain that `apply`
    screen-blends onto the image."""

    task = "derain"
    param_type = "rain"

    def __init__(
        self,
        density: Range = (0.001, 0.003),
        length: Range = (10, 25),
        angle: Range = (-30, 30),
        width: Range = (1.0, 1.5),
        brightness: Range = (0.45, 0.75),
        layers: int | tuple[int, int] = 1,
        angle_spread: float = 5.0,
        veil: Range = 0.0,
        airlight: Range = (0.75, 0.95),
    ):
        self.density = check_range("density", density, 0.0, 1.0)
        self.length = check_range("length", length, 1.0, 512.0)
        self.angle = check_range("angle", angle, -90.0, 90.0)
        self.width = check_range("width", width, 0.1, 32.0)
        self.brightness = check_range("brightness", brightness, 0.0, 1.0)
        low, high = check_range("layers", layers, 1, 3)
        self.layers = (int(low), int(high))
        self.angle_spread = check_range("angle_spread", angle_spread, 0.0, 90.0)[0]
        self.veil = check_range("veil", veil, 0.0, 1.0)
        self.airlight = check_range("airlight", airlight, 0.0, 1.0)

    # The presets are calibrated on ordinary photos to the mean input PSNR and SSIM of the benchmarks (Y channel,
    # as derain papers report them): `python benchmarks/rain_levels.py ../shared/data/val/mcmaster18` prints them.

    @classmethod
    def light(cls) -> Rain:
        """Like Rain100L (inputs about 26.9 dB / 0.84): sparse thin streaks in one or two layers."""
        return cls(**LIGHT)

    @classmethod
    def medium(cls) -> Rain:
        """Between the two (about 20 dB / 0.6): denser, longer streaks in two layers and a light veil."""
        return cls(**MEDIUM)

    @classmethod
    def heavy(cls) -> Rain:
        """Like Rain100H (inputs about 13.6 dB / 0.37): dense, long, wide streaks in three layers and a veil."""
        return cls(**HEAVY)

    @classmethod
    def mixed(cls) -> RandomChoice:
        """Light or heavy rain, drawn per image with equal chances."""
        return RandomChoice([cls.light(), cls.heavy()])

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        angle = draw(self.angle, rng)
        count = int(rng.integers(self.layers[0], self.layers[1] + 1))
        layers, streaks = [], []
        for depth in layer_depths(count, rng):
            layer = {
                "depth": depth,
                "density": _along(self.density, 1.0 - depth),
                "length": _along(self.length, depth),
                "angle": angle + float(rng.uniform(-self.angle_spread, self.angle_spread)),
                "width": _along(self.width, depth),
                "brightness": _along(self.brightness, depth),
            }
            streaks.append(rain_streaks((shape[0], shape[1]), rng, **{k: v for k, v in layer.items() if k != "depth"}))
            layers.append(layer)
        total = sum(layer["density"] for layer in layers)
        return {
            "type": self.param_type,
            "density": total,
            "density_label": density_label(total),
            "layers": layers,
            "veil": draw(self.veil, rng),
            "airlight": draw(self.airlight, rng),
            "streaks": streaks,
        }

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        veil = params["veil"]
        rainy = (1.0 - veil) * clean + veil * params["airlight"]
        for streaks in params["streaks"]:
            streaks = np.asarray(streaks, dtype=np.float32)
            if streaks.shape != clean.shape[:2]:
                raise DataError(f"Expected rain streaks of the image's size {clean.shape[:2]}, found {streaks.shape}.")
            rainy = 1.0 - (1.0 - rainy) * (1.0 - streaks[..., None])
        return np.clip(rainy, 0.0, 1.0).astype(np.float32)


def layer_depths(count: int, rng: np.random.Generator) -> list[float]:
    """The depths (0 far, 1 near) of `count` layers: evenly spread from far to near, each moved at random within
    its share of the range (one layer: anywhere)."""
    return [float((index + rng.uniform()) / count) for index in range(count)]


def _along(bounds: tuple[float, float], share: float) -> float:
    return bounds[0] + share * (bounds[1] - bounds[0])


def rain_streaks(
    shape: tuple[int, int],
    rng: np.random.Generator,
    density: float,
    length: float,
    angle: float,
    width: float,
    brightness: float,
) -> np.ndarray:
    """One H x W layer of streaks in [0, 1]: drops seeded with probability `density` per pixel, of random
    strength, each smeared along `angle` (degrees from vertical) to one of LENGTH_FACTORS times `length`, so that
    an isolated streak of the middle length peaks at `brightness`."""
    if len(shape) != 2 or min(shape) < 1:
        raise DataError(f"rain_streaks expects a (height, width) shape, found {shape}.")
    seeded = rng.random(shape) < density
    strength = rng.uniform(0.4, 1.0, shape).astype(np.float32)
    group = rng.integers(len(LENGTH_FACTORS), size=shape)
    kernels = [streak_kernel(max(1.0, factor * length), angle, width) for factor in LENGTH_FACTORS]
    scale = brightness / kernels[LENGTH_FACTORS.index(1.0)].max()
    layer = np.zeros(shape, dtype=np.float32)
    for index, kernel in enumerate(kernels):
        drops = np.where(seeded & (group == index), strength, np.float32(0.0))
        if drops.any():
            layer += blur(drops, kernel) * scale
    return np.clip(layer, 0.0, 1.0)


def streak_kernel(length: float, angle: float, width: float) -> np.ndarray:
    """A streak of `length` pixels at `angle` degrees from vertical, widened by a Gaussian of full width at half
    maximum `width` and fading towards both ends (a raised-cosine taper along its length), summing to 1."""
    sigma = width / _FWHM_PER_SIGMA
    radius = int(np.ceil(3 * sigma))
    size = (int(np.ceil(length)) + 1 + 2 * radius) | 1
    line = linear_motion_kernel(length, 90.0 + angle, size)
    offsets = np.arange(-radius, radius + 1)
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = blur(line, np.outer(profile, profile))
    rows, cols = np.indices(kernel.shape) - (size - 1) / 2
    radians = np.deg2rad(angle)
    along = rows * np.cos(radians) + cols * np.sin(radians)
    taper = np.cos(np.clip(along / (length / 2 + radius + 1), -1.0, 1.0) * np.pi / 2) ** 2
    kernel = kernel * taper
    return (kernel / kernel.sum()).astype(np.float32)


def density_label(density: float) -> int:
    """DID-MDN's rain-density label of a total drop density: 0 heavy, 1 medium, 2 light."""
    if density >= HEAVY_DENSITY:
        return 0
    return 1 if density >= MEDIUM_DENSITY else 2
