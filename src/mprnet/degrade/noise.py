"""Additive white Gaussian noise, signal-dependent (Poisson-Gaussian) sensor noise, and a blind mix of these with
noise through a camera's pipeline (camera.py)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import Degradation, RandomChoice, Range, check_range, draw
from .camera import CameraNoise


class GaussianNoise(Degradation):
    """Adds N(0, sigma^2) noise, sigma on the 0-255 scale, fixed or drawn uniformly per image from sigma_range.
    `shared` (fixed or a range to draw from) is the share of each pixel's noise variance common to its channels:
    0 is colour noise, independent per channel; 1 is luminance noise, the same in every channel, as cameras leave
    it where they remove chroma noise (and as a black-and-white photo has it)."""

    task = "denoise"
    param_type = "gaussian"

    def __init__(
        self,
        sigma: float | None = None,
        sigma_range: tuple[float, float] | None = None,
        clip: bool = False,
        shared: Range = 0.0,
    ):
        if sigma is not None and sigma_range is not None:
            raise DataError(f"GaussianNoise expects sigma or sigma_range, found both ({sigma}, {sigma_range}).")
        if sigma_range is None:
            self.sigma = check_range("sigma", 25.0 if sigma is None else sigma, 0.0, 255.0)
        else:
            self.sigma = check_range("sigma_range", sigma_range, 0.0, 255.0)
        self.clip = bool(clip)
        self.shared = check_range("shared", shared, 0.0, 1.0)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        sigma = draw(self.sigma, rng)
        return {"type": self.param_type, "sigma": sigma, "clip": self.clip, "shared": draw(self.shared, rng)}

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        shared = params.get("shared", 0.0)  # parameters written before it had one: colour noise
        noisy = add_gaussian_noise(clean, params["sigma"], rng, shared)
        return np.clip(noisy, 0.0, 1.0) if params["clip"] else noisy


class PoissonGaussianNoise(Degradation):
    """Sensor noise of variance a * x + b for an intensity x in [0, 1]: Poisson photon noise of gain a plus
    Gaussian read noise of variance b, with a and b drawn uniformly per image; the result is clipped to [0, 1]."""

    task = "denoise"
    param_type = "poisson_gaussian"

    def __init__(self, a_range: Range = (1e-4, 1e-2), b_range: Range = (1e-6, 1e-3)):
        self.a = check_range("a_range", a_range, 0.0, 1.0)
        self.b = check_range("b_range", b_range, 0.0, 1.0)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        a, b = draw(self.a, rng), draw(self.b, rng)
        return {"type": self.param_type, "a": a, "b": b}

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        a, b = params["a"], params["b"]
        signal = np.clip(clean, 0.0, 1.0)
        if a > 0:
            signal = (rng.poisson(signal / a) * a).astype(np.float32)
        noisy = add_gaussian_noise(signal, 255.0 * np.sqrt(b), rng)
        return np.clip(noisy, 0.0, 1.0)


class MixedNoise(RandomChoice):
    """The kinds of noise a blind denoiser meets, drawn per image: Gaussian noise of a blind sigma, Poisson-Gaussian
    sensor noise (poisson_share of the images), noise through a camera's pipeline (camera_share) and Gaussian
    noise mostly common to the channels (luma_share: `shared` 0.5-1, luminance noise)."""

    def __init__(
        self,
        poisson_share: float = 0.1,
        camera_share: float = 0.4,
        sigma_range: tuple[float, float] = (0.0, 50.0),
        a_range: Range = (1e-4, 1e-2),
        b_range: Range = (1e-6, 1e-3),
        luma_share: float = 0.0,
    ):
        poisson = check_range("poisson_share", poisson_share, 0.0, 1.0)[0]
        camera = check_range("camera_share", camera_share, 0.0, 1.0)[0]
        luma = check_range("luma_share", luma_share, 0.0, 1.0)[0]
        if poisson + camera + luma > 1.0:
            raise DataError(
                "MixedNoise expects poisson_share + camera_share + luma_share <= 1, "
                f"found {poisson} + {camera} + {luma}."
            )
        options: list[Degradation] = [
            GaussianNoise(sigma_range=sigma_range),
            PoissonGaussianNoise(a_range, b_range),
            CameraNoise(),
        ]
        weights = [1.0 - poisson - camera - luma, poisson, camera]
        if luma:  # no option of weight 0: the draws of mixes without it stay as they were
            options.append(GaussianNoise(sigma_range=sigma_range, shared=(0.5, 1.0)))
            weights.append(luma)
        super().__init__(options, weights)


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, shared: float = 0.0) -> np.ndarray:
    """The image plus white Gaussian noise of standard deviation sigma (0-255 scale), as float32; `shared` of its
    variance common to the channels."""
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    if shared > 0:
        common = rng.standard_normal((*image.shape[:-1], 1), dtype=np.float32)
        noise = np.float32(np.sqrt(1.0 - shared)) * noise + np.float32(np.sqrt(shared)) * common
    return image + noise * np.float32(sigma / 255.0)
