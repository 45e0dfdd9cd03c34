"""Seeded degradations that turn clean images into noisy, blurred or rainy ones and record their parameters."""

from __future__ import annotations

from .base import Degradation, Identity, RandomChoice, seeded_rng
from .blur import MotionBlur, blur, camera_shake_kernel, linear_motion_kernel
from .camera import CameraNoise
from .folders import PairsWritten, write_pairs
from .noise import GaussianNoise, MixedNoise, PoissonGaussianNoise
from .rain import Rain, density_label, rain_streaks

__all__ = [
    "Degradation",
    "Identity",
    "RandomChoice",
    "GaussianNoise",
    "PoissonGaussianNoise",
    "MixedNoise",
    "CameraNoise",
    "MotionBlur",
    "blur",
    "camera_shake_kernel",
    "linear_motion_kernel",
    "Rain",
    "rain_streaks",
    "density_label",
    "seeded_rng",
    "write_pairs",
    "PairsWritten",
]
