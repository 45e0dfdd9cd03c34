"""docs/degradations.png: one photo under each degradation and level, a row per task, to judge at a glance.

Usage: python scripts/degradation_figure.py [OUT_PATH]   (default docs/degradations.png)
The photo is a crop of scikit-image's astronaut (NASA, public domain); every degradation is seeded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mprnet.degrade import CameraNoise, Degradation, MotionBlur, seeded_rng
from mprnet.figures import image_grid, save_figure
from mprnet.tasks import make_degradation

CROP = (slice(30, 200), slice(155, 325))  # the face, the suit's highlights and the flag


def photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()[CROP].astype(np.float32) / 255


def with_settings(degradation: Degradation, **settings) -> Callable[[np.ndarray, int], np.ndarray]:
    """Degrades with the degradation's own draws, some of them set, so that the figure shows a given strength."""

    def degrade(clean: np.ndarray, seed: int) -> np.ndarray:
        rng = seeded_rng(seed, "figure")
        params = {**degradation.sample(rng, clean.shape), **settings}
        return degradation.apply(clean, params, rng)

    return degrade


def level(task: str, name: str | float) -> Callable[[np.ndarray, int], np.ndarray]:
    degradation = make_degradation(task, name)
    return lambda clean, seed: degradation(clean, seeded_rng(seed, "figure"))[0]


ROWS: list[list[tuple[str, Callable[[np.ndarray, int], np.ndarray]]]] = [
    [
        ("Gaussian, sigma 25", level("denoise", 25)),
        ("Poisson-Gaussian", with_settings(make_degradation("denoise", "poisson"), a=0.005, b=1e-4)),
        ("camera, ISO high", with_settings(CameraNoise(), shot=0.006, read=2.5e-5, jpeg_quality=None)),
        ("camera + JPEG 80", with_settings(CameraNoise(), shot=0.002, read=3e-6, jpeg_quality=80)),
    ],
    [
        ("shake 21 px", level("deblur", 21)),
        ("linear", level("deblur", "linear")),
        ("camera 15 px", with_settings(MotionBlur((15, 15), linear_light=True), highlight_gain=3.0)),
        ("camera 35 px", with_settings(MotionBlur((35, 35), linear_light=True), highlight_gain=3.0)),
    ],
    [
        ("light", level("derain", "light")),
        ("medium", level("derain", "medium")),
        ("heavy", level("derain", "heavy")),
        ("heavy, again", lambda clean, seed: level("derain", "heavy")(clean, seed + 1)),
    ],
]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/degradations.png")
    clean = photo()
    rows = [
        [(clean, f"{task}: clean")] + [(degrade(clean, 0), label) for label, degrade in row]
        for task, row in zip(("denoise", "deblur", "derain"), ROWS)
    ]
    title = "Each level of mprnet degrade (camera: noise through a camera pipeline, blur in linear light)"
    save_figure(image_grid(rows, title), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
