"""Synthetic rain: layers of sparse drops smeared into streaks along an angle, screen-blended onto the image."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import Degradation, RandomChoice, Range, check_range, draw
from .blur import blur, linear_motion_kernel

# Total drop density (fraction of pixels seeding a streak, summed over layers) at which DID-MDN's density
# labels change: 0 heavy, 1 medium, 2 light.
HEAVY_DENSITY = 0.008
MEDIUM_DENSITY = 0.004
_FWHM_PER_SIGMA = 2.3548


class Rain(Degradation):
    """Rain streaks in 1 to 3 layers. Each range is (min, max) or a fixed value, drawn per layer:
    density (fraction of pixels seeding a drop), length (pixels), width (pixels, full width at half maximum),
    brightness (peak streak intensity in [0, 1]). The angle (degrees from vertical) is drawn once per image and
    each layer deviates from it by at most angle_spread degrees. The parameters hold each layer's streaks
    (float32 H x W) under "streaks", the physical rain that `apply` screen-blends onto the image."""

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
        angle_spread: float = 10.0,
    ):
        self.density = check_range("density", density, 0.0, 1.0)
        self.length = check_range("length", length, 1.0, 512.0)
        self.angle = check_range("angle", angle, -90.0, 90.0)
        self.width = check_range("width", width, 0.1, 32.0)
        self.brightness = check_range("brightness", brightness, 0.0, 1.0)
        low, high = check_range("layers", layers, 1, 3)
        self.layers = (int(low), int(high))
        self.angle_spread = check_range("angle_spread", angle_spread, 0.0, 90.0)[0]

    # The presets are calibrated on ordinary photos to the mean input PSNR of the benchmarks (Y channel, as derain
    # papers report it): `python benchmarks/rain_levels.py ../shared/data/val/mcmaster18` prints the figures.

    @classmethod
    def light(cls) -> Rain:
        """Like Rain100L (inputs about 26.9 dB): sparse thin streaks in one direction."""
        return cls()

    @classmethod
    def medium(cls) -> Rain:
        """Between the two (about 20 dB): denser and longer streaks in one direction."""
        return cls(density=(0.004, 0.006), length=(15, 30), width=(1.0, 1.5), brightness=(0.5, 0.8))

    @classmethod
    def heavy(cls) -> Rain:
        """Like Rain100H (inputs about 13.6 dB): dense, longer, wider streaks in two or three layers."""
        return cls(density=(0.004, 0.0065), length=(20, 35), width=(1.0, 1.8), brightness=(0.5, 0.8), layers=(2, 3))

    @classmethod
    def mixed(cls) -> RandomChoice:
        """Light or heavy rain, drawn per image with equal chances."""
        return RandomChoice([cls.light(), cls.heavy()])

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        angle = draw(self.angle, rng)
        count = int(rng.integers(self.layers[0], self.layers[1] + 1))
        layers, streaks = [], []
        for _ in range(count):
            layer = {
                "density": draw(self.density, rng),
                "length": draw(self.length, rng),
                "angle": angle + float(rng.uniform(-self.angle_spread, self.angle_spread)),
                "width": draw(self.width, rng),
                "brightness": draw(self.brightness, rng),
            }
            streaks.append(rain_streaks((shape[0], shape[1]), rng, **layer))
            layers.append(layer)
        total = sum(layer["density"] for layer in layers)
        return {
            "type": self.param_type,
            "density": total,
            "density_label": density_label(total),
            "layers": layers,
            "streaks": streaks,
        }

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        rainy = clean
        for streaks in params["streaks"]:
            streaks = np.asarray(streaks, dtype=np.float32)
            if streaks.shape != clean.shape[:2]:
                raise DataError(f"Expected rain streaks of the image's size {clean.shape[:2]}, found {streaks.shape}.")
            rainy = 1.0 - (1.0 - rainy) * (1.0 - streaks[..., None])
        return np.clip(rainy, 0.0, 1.0).astype(np.float32)


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
    strength, smeared along `angle` (degrees from vertical) so an isolated streak peaks at `brightness`."""
    if len(shape) != 2 or min(shape) < 1:
        raise DataError(f"rain_streaks expects a (height, width) shape, found {shape}.")
    drops = (rng.random(shape) < density) * rng.uniform(0.5, 1.0, shape).astype(np.float32)
    kernel = streak_kernel(length, angle, width)
    return np.clip(blur(drops, kernel) * (brightness / kernel.max()), 0.0, 1.0)


def streak_kernel(length: float, angle: float, width: float) -> np.ndarray:
    """A linear motion kernel of `length` pixels at `angle` degrees from vertical, widened by a Gaussian of
    full width at half maximum `width`."""
    sigma = width / _FWHM_PER_SIGMA
    radius = int(np.ceil(3 * sigma))
    line = linear_motion_kernel(length, 90.0 + angle, (int(np.ceil(length)) + 1 + 2 * radius) | 1)
    offsets = np.arange(-radius, radius + 1)
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = blur(line, np.outer(profile, profile))
    return (kernel / kernel.sum()).astype(np.float32)


def density_label(density: float) -> int:
    """DID-MDN's rain-density label of a total drop density: 0 heavy, 1 medium, 2 light."""
    if density >= HEAVY_DENSITY:
        return 0
    return 1 if density >= MEDIUM_DENSITY else 2
